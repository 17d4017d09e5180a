"""rolebook: policy-as-data access decisions for multi-user accounts.

The import names are `rolebook.engine` (load, validate, compile, evaluate), `rolebook.api` (the
HTTP service and its command line) and `rolebook.storage` (accounts, members, invitations); the
folders stay at the repository's top level and setuptools maps them under this one name, so an
installed rolebook never collides with a user's own `api/` or `engine/`.
"""
