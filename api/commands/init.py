"""`rolebook init [DIR]`: a policy folder for a new user, from the examples the package ships."""

from __future__ import annotations

import re
import sys
from importlib import resources
from pathlib import Path

from rolebook.api.config import BY_NAME

SCHEMAS = ("policy.schema.json", "policy_test.schema.json")
MODELINE = re.compile(r"^(# yaml-language-server: \$schema=)\S*?([a-z_]+\.schema\.json)$", re.M)


def register(sub) -> None:
    parser = sub.add_parser("init", help="write a policy folder: the example policies, their "
                            "tests and the JSON Schemas editors validate them with")
    parser.add_argument("dir", nargs="?", default=BY_NAME["policy_dir"].default, metavar="DIR",
                        help="the folder to create; it must be empty or absent "
                        f"(default: {BY_NAME['policy_dir'].default})")
    parser.set_defaults(run=run)


def example_files() -> dict[str, str]:
    """Relative path → text of every file init writes; the modelines point at the copied
    schemas so an editor validates the folder wherever it is."""
    examples = resources.files("rolebook") / "examples"
    out = {}
    for policy in sorted(examples.iterdir(), key=lambda p: p.name):
        for file in _yaml_below(policy):
            relative = file.relative_to(examples)
            up = "../" * (len(relative.parts) - 1)
            out[relative.as_posix()] = MODELINE.sub(rf"\g<1>{up}\g<2>", file.read_text())
    engine = resources.files("rolebook.engine")
    out.update({name: engine.joinpath(name).read_text() for name in SCHEMAS})
    return out


def _yaml_below(folder) -> list[Path]:
    return sorted(Path(str(folder)).rglob("*.yaml"))


def run(args) -> int:
    target = Path(args.dir)
    files = example_files()
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        clashes = [name for name in files if (target / name).exists()]
        named = ", ".join(clashes) if clashes else "nothing of ours, but it is not empty"
        print(f"rolebook init: {target} is not an empty folder; it would overwrite: {named}. "
              "Choose a new folder.", file=sys.stderr)
        return 1
    for name, text in files.items():
        path = target / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    policies = sorted({name.split("/")[0] for name in files if "/" in name})
    print(f"wrote {len(files)} files to {target}: policies {', '.join(policies)}, their tests "
          "and the JSON Schemas")
    flag = "" if target == Path(BY_NAME["policy_dir"].default) else f" --policy-dir {target}"
    print(f"next: rolebook policy test{flag}   then: rolebook serve{flag}")
    return 0
