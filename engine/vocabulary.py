"""The service's own resource kinds: the only access vocabulary Python may know.

Every policy must declare these kinds and actions; the service fills these
attributes from storage, so a policy may only declare them with these types.
Which role may do what is never here: that is policy data.
"""

SERVICE_KINDS: dict[str, tuple[str, ...]] = {
    "account": ("view", "update", "delete"),
    "billing": ("view", "update"),
    "member": ("list", "view", "update_role", "remove", "leave"),
    "invitation": ("list", "view", "create", "resend", "revoke"),
    "audit": ("view",),
}

SERVICE_ATTRIBUTES: dict[str, dict[str, str]] = {
    "account": {"owner_count": "integer"},
    "billing": {},
    "member": {
        "target_user_id": "string",
        "target_role": "role",
        "new_role": "role",
        "owner_count": "integer",
        "is_self": "boolean",
    },
    "invitation": {"role": "role"},
    "audit": {},
}

# Rule names the engine itself uses in decisions; a policy may not take them.
DEFAULT_DENY = "default-deny"
RESERVED_RULE_NAMES = frozenset({DEFAULT_DENY})
