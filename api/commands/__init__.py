"""Every command module exposes `register(subparsers)`, which sets `run` on its parser."""

from rolebook.api.commands import check, db, init, policy, serve, token

COMMANDS: list = [init.register, serve.register, token.register, policy.register, check.register,
                  db.register]
