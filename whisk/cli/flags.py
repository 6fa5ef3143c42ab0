"""Flags shared by several commands, with `wsk`'s help texts (a `NAME` in backquotes names the value)."""

from __future__ import annotations

from whisk.cli.grammar import BOOL, INT, STRING, Flag

GLOBAL = (
    Flag("apihost", "", STRING, help="whisk API `HOST`"),
    Flag("apiversion", "", STRING, help="whisk API `VERSION`"),
    Flag("auth", "u", STRING, help="authorization `KEY`"),
    Flag("cert", "", STRING, help="client cert"),
    Flag("debug", "d", BOOL, help="debug level output"),
    Flag("insecure", "i", BOOL, help="bypass certificate checking"),
    Flag("key", "", STRING, help="client key"),
    Flag("verbose", "v", BOOL, help="verbose output"),
)

PARAM = Flag("param", "p", STRING, help="parameter values in `KEY VALUE` format", prepass=True)
PARAM_FILE = Flag("param-file", "P", STRING, help="`FILE` containing parameter values in JSON format", prepass=True)
ANNOTATION = Flag("annotation", "a", STRING, help="annotation values in `KEY VALUE` format", prepass=True)
ANNOTATION_FILE = Flag("annotation-file", "A", STRING, help="`FILE` containing annotation values in JSON format",
                       prepass=True)
FEED_PARAM = Flag("feed-param", "F", STRING, help="feed parameter values in `KEY VALUE` format", prepass=True)
TRIGGER_PARAM = Flag("trigger-param", "T", STRING, help="trigger parameter values in `KEY VALUE` format",
                     prepass=True)
PARAMS = (PARAM, PARAM_FILE)
PARAMS_AND_ANNOTATIONS = (ANNOTATION, ANNOTATION_FILE, PARAM, PARAM_FILE)

NAME_SORT = Flag("name-sort", "n", BOOL, help="sorts a list alphabetically by entity name; only applicable within "
                                            "the limit/skip returned entity block")


def paging(noun: str) -> tuple[Flag, ...]:
    """`list`'s --skip, --limit and --name-sort."""
    return (
        Flag("skip", "s", INT, 0, f"exclude the first `SKIP` number of {noun} from the result"),
        Flag("limit", "l", INT, 30, f"only return `LIMIT` number of {noun} from the collection"),
        NAME_SORT,
    )


def summary(noun: str, extra: str = "") -> Flag:
    return Flag("summary", "s", BOOL, help=f"summarize {noun} details{extra}")
