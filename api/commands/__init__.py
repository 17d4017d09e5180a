"""Every command module exposes `register(subparsers)`, which sets `run` on its parser."""

from rolebook.api.commands import check, policy, serve, token

COMMANDS: list = [serve.register, token.register, policy.register, check.register]
