"""Every reference in the repository leads somewhere a reader of the repository has: no tracked file cites reference
material kept outside it, every `docs/<file>.md` a file names exists, and every section cited as
"docs/openwhisk.md §N" or "docs/testing.md, <Section>" is a heading there."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Written in pieces so that this file does not match itself.
OUTSIDE = ["../" + "shared", "/work/" + "shared", "spec" + " §", "Spec" + " §", "spec/" + "OPEN"] + [
    name + "." + "md" for name in ("OPENWHISK", "WSK_CLI", "APIGW", "CONSUL", "DOCKER", "BACKENDS")]


def _tracked() -> dict[str, str]:
    names = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    texts = {}
    for name in names.decode().split("\0"):
        path = ROOT / name
        if not name or not path.is_file():
            continue
        try:
            texts[name] = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue                                    # images and other binaries cite nothing
    return texts


def _headings(path: Path) -> list[str]:
    return [line.lstrip("#").strip() for line in path.read_text().splitlines() if line.startswith("#")]


def test_no_reference_outside_the_repository() -> None:
    found = [f"{name}:{n}: {needle}" for name, text in _tracked().items()
             for n, line in enumerate(text.splitlines(), 1) for needle in OUTSIDE if needle in line]
    assert not found, "references to files a reader of the repository does not have:\n" + "\n".join(found)


def test_named_docs_exist() -> None:
    missing = sorted({f"{name}: {doc}" for name, text in _tracked().items()
                      for doc in re.findall(r"(?<![\w/.])docs/[\w.-]+\.md", text) if not (ROOT / doc).is_file()})
    assert not missing, "docs named but absent:\n" + "\n".join(missing)


def test_cited_sections_exist() -> None:
    numbers = {m.group(1) for h in _headings(ROOT / "docs/openwhisk.md") if (m := re.match(r"(\d+(?:\.\d+)?)\.? ", h))}
    testing = _headings(ROOT / "docs/testing.md")
    bad = []
    for name, text in _tracked().items():
        for cite in re.finditer(r"docs/openwhisk\.md,? §(\d+(?:\.\d+)?)((?:(?:, | and |–|/)§\d+(?:\.\d+)?)*)", text):
            for number in [cite.group(1), *re.findall(r"§(\d+(?:\.\d+)?)", cite.group(2))]:
                if number not in numbers:
                    bad.append(f"{name}: docs/openwhisk.md §{number}")
        for section in re.findall(r"docs/testing\.md, ([A-Z][\w-]*)", text):
            if not any(h.startswith(section) for h in testing):
                bad.append(f"{name}: docs/testing.md, {section}")
    assert not bad, "cited sections that are not headings:\n" + "\n".join(bad)


def _section(path: Path, heading: str) -> str:
    return path.read_text(encoding="utf-8").split(f"\n## {heading}", 1)[1].split("\n## ", 1)[0]


def test_log_events_the_docs_name_are_logged() -> None:
    """An operator greps for the event names the docs give; each is an event some `.info(...)`, `.warning(...)` (or
    another level) in whisk writes. A name counts as an event when its first part is one whisk's events use."""
    code = "\n".join(p.read_text(encoding="utf-8") for p in (ROOT / "whisk").rglob("*.py"))
    level = r"\.(?:debug|info|warning|error|exception|critical)"
    events = set(re.findall(level + r"""\(\s*["']([a-z_]+(?:\.[a-z_]+)+)["']""", code))
    # whisk/retry.py names its two events after the caller's `event`.
    for event in re.findall(r"""(?s)while_unavailable\(.{0,200}?event=["']([a-z_]+(?:\.[a-z_]+)+)["']""", code):
        events |= {f"{event}.retrying", f"{event}.recovered"}
    namespaces = {event.split(".")[0] for event in events}
    not_events = {"pool.run"}                       # a method (docs/performance.md), not a log line
    missing = sorted({f"{name}: {doc}" for name, text in _tracked().items()
                      if name == "README.md" or (name.startswith("docs/") and name.endswith(".md"))
                      for doc in re.findall(r"`([a-z_]+(?:\.[a-z_]+)+)`", text)
                      if doc.split(".")[0] in namespaces and doc not in events and doc not in not_events
                      and not re.search(r"\.(?:py|json|md|js|sh|conf|ya?ml|txt|png)$", doc)})
    assert len(events) > 50 and "server.started" in events     # the scan sees the code's events
    assert not missing, "log events named in the docs that whisk never logs:\n" + "\n".join(missing)


def test_metrics_the_docs_and_alerts_name_exist() -> None:
    """Every metric in the operations guide's Metrics and Prometheus sections, and in the alert rules, is one
    whisk/metrics.py defines (a counter's `_total`, a histogram's `_bucket`/`_sum`/`_count` aside); label values that
    look like names (`whisk_internal_error`) are not metrics."""
    from whisk.entities.activation import STATUS_IDS
    defined = set(re.findall(r"""["']((?:open)?whisk_[A-Za-z_]+)["']""",
                             (ROOT / "whisk" / "metrics.py").read_text(encoding="utf-8")))
    ops = ROOT / "docs" / "operations.md"
    texts = [_section(ops, "Metrics"), _section(ops, "Prometheus and Grafana"),
             (ROOT / "deploy" / "prometheus" / "alerts.yml").read_text(encoding="utf-8")]
    named = {name for text in texts for name in re.findall(r"\b((?:open)?whisk_\w+)\b(?!\.\w)", text)}
    named -= set(STATUS_IDS)                        # and file names, `openwhisk_events.json`, are not matched

    def base(name: str) -> str:
        return re.sub(r"_(?:total|bucket|sum|count)$", "", name)

    assert {"openwhisk_action_activations", "whisk_pool_containers"} <= defined     # the scan sees the definitions
    unknown = sorted(name for name in named if name not in defined and base(name) not in defined)
    assert not unknown, "metrics named but not defined in whisk/metrics.py:\n" + "\n".join(unknown)


def test_make_help_names_every_target() -> None:
    """`make` alone prints `make help`: every target the Makefile has is named there, and every name is a target."""
    text = (ROOT / "Makefile").read_text(encoding="utf-8")
    targets = set(re.findall(r"^([a-z][\w-]*):", text, re.M)) - {"help"}
    helped = set(re.findall(r'^\t@echo "make ([\w-]+)', text, re.M))
    phony = {name for line in re.findall(r"^\.PHONY:(.*)$", text, re.M) for name in line.split()} - {"help"}
    assert helped == targets
    assert phony == targets


def test_every_metric_whisk_defines_is_in_the_operations_guide() -> None:
    """The other way round: a metric added to whisk/metrics.py is listed in docs/operations.md's Metrics section, with
    its type and labels, so that an operator can find what a series means."""
    defined = set(re.findall(r"""["']((?:open)?whisk_[A-Za-z_]+)["']""",
                             (ROOT / "whisk" / "metrics.py").read_text(encoding="utf-8")))
    section = _section(ROOT / "docs" / "operations.md", "Metrics")
    assert len(defined) > 20
    assert sorted(name for name in defined if name not in section) == []


# The guides a reader follows today; docs/testing.md and docs/performance.md are records, which may name what has
# since moved (and OpenWhisk's own files: its Go client's whisk/*.go).
GUIDES = ["README.md", *(f"docs/{name}.md" for name in ("architecture", "operations", "openwhisk", "runtimes",
                                                        "catalog"))]


def test_the_files_and_modules_the_guides_name_exist() -> None:
    """A module that moved or was renamed leaves its old path in a guide: every `whisk/...py`, `tests/...`, `bench/...`,
    `config/...` or `deploy/...` file a guide names, every module named from its package (`controller/ledger.py`),
    and every `python -m` module, is in the checkout."""
    path = re.compile(r"(?<![\w/.-])((?:whisk|tests|bench|config|deploy|\.ci)/[\w./-]*\.(?:py|json|md|js|sh|conf|"
                      r"template|ya?ml|txt|go|mod|sum|toml))\b")
    # The guides name most modules from whisk/ (`controller/results.py`), a backend's from containers/ (`docker/...`);
    # OpenWhisk's own files (`tools/db/...`, its runtimes' `core/...`) are cited from its repositories.
    relative = re.compile(r"(?<![\w/.-])(?!tools/|core/)([a-z_]+/[\w/]*\.py)\b")
    module = re.compile(r"python3? -m ((?:whisk|bench|tests)(?:\.\w+)+)")
    missing = []
    for name in GUIDES:
        text = (ROOT / name).read_text(encoding="utf-8")
        missing += [f"{name}: {p}" for p in path.findall(text) if not (ROOT / p).exists()]
        missing += [f"{name}: {p}" for p in relative.findall(text)
                    if not any((base / p).exists() for base in (ROOT, ROOT / "whisk", ROOT / "whisk" / "containers"))]
        for m in module.findall(text):
            where = ROOT / m.replace(".", "/")
            if not (where.with_suffix(".py").is_file() or (where / "__main__.py").is_file()):
                missing.append(f"{name}: python -m {m}")
    assert not missing, "files or modules named but absent:\n" + "\n".join(missing)


def test_the_readme_layout_names_what_is_there() -> None:
    """The README's Layout block names each package and top-level module of whisk/ (and the repository's folders) by
    its place: each name there exists, and each package of whisk/ is named."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = _section(ROOT / "README.md", "Layout").split("```", 2)[1]
    names = set(re.findall(r"(?<![\w.(/`])([a-z_]+(?:/|\.py))(?=\s)", block))
    packages = {p.name + "/" for p in (ROOT / "whisk").iterdir() if (p / "__init__.py").is_file()}
    places = [ROOT, ROOT / "whisk", *(p.parent for p in (ROOT / "whisk").glob("*/__init__.py"))]   # containers/docker/
    absent = sorted(n for n in names if not any((place / n).exists() for place in places))
    assert "Layout" in text and len(names) > 15
    assert not absent, "the README's layout names what is not there: " + ", ".join(absent)
    assert sorted(packages - names) == [], "whisk's packages the README's layout does not name"


def test_every_bench_option_with_a_default_says_it_in_its_help() -> None:
    """`python -m bench.<name> --help` is how a benchmark is run again: an option that has a default says it, as
    most do ("(default 20)"), so that a figure in docs/performance.md can be told from a run with other settings."""
    import ast

    silent = []
    for path in sorted((ROOT / "bench").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not (isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "add_argument"):
                continue
            given = {k.arg: k.value for k in node.keywords}
            default = given.get("default")
            if default is None or (isinstance(default, ast.Constant) and default.value in (None, False, "")) or (
                    isinstance(default, ast.List) and not default.elts):        # a repeatable option: none given
                continue
            if "default" not in (ast.unparse(given["help"]) if "help" in given else ""):
                silent.append(f"{path.name}:{node.lineno} {ast.unparse(node.args[0]) if node.args else ''}")
    assert not silent, "options whose --help does not show their default:\n" + "\n".join(silent)


def _bench_options(module: str) -> set[str]:
    """The options a bench module's parser takes, read from its source (the common ones of `_harness.parser` too)."""
    import ast

    tree = ast.parse((ROOT / "bench" / f"{module}.py").read_text(encoding="utf-8"))
    options = {"-h", "--help"}
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "add_argument":
            options |= {a.value for a in node.args if isinstance(a, ast.Constant) and isinstance(a.value, str)}
        elif isinstance(node, ast.Call) and getattr(node.func, "id", None) == "parser":
            options |= {"--n", "--json"}
    return options


def test_the_bench_commands_the_guides_and_benchmarks_give_take_their_flags() -> None:
    """A command line a guide or a benchmark's own docstring gives (`python -m bench.soak --duration 1800 ...`) is run
    as written: every flag in it is one its module takes. The records (docs/testing.md, docs/performance.md) keep
    the commands of their day, flags since retired included, and are not checked."""
    sources = {name: (ROOT / name).read_text(encoding="utf-8") for name in GUIDES}
    sources |= {f"bench/{p.name}": p.read_text(encoding="utf-8") for p in (ROOT / "bench").glob("*.py")}
    unknown, seen = [], 0
    for name, text in sources.items():
        for module, rest in re.findall(r"python3? -m bench\.(\w+)((?:[ \t]+(?:\\\n\s*)?[^\s`]+)*)", text):
            seen += 1
            flags = set(re.findall(r"(?<![\w-])(--?[a-z][\w-]*)", rest))
            unknown += [f"{name}: python -m bench.{module} {flag}" for flag in sorted(flags - _bench_options(module))]
    assert seen > 10                                    # the scan sees the commands
    assert not unknown, "flags the benchmark does not take:\n" + "\n".join(unknown)
