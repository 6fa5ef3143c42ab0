"""`whisk property set|unset|get` (wsk's property.go): the properties file, and what the client would use."""

from __future__ import annotations

from whisk.cli.version import VERSION
from whisk.cli import wskprops
from whisk.cli.client import Call
from whisk.cli.context import Context
from whisk.cli.errors import CliError
from whisk.cli.grammar import BOOL, STRING, Command, Flag

CLI_VERSION = f"whisk {VERSION}"
# (flag, file key, label) in the order `property get --all` prints them.
_SHOWN = (("apihost", "whisk API host"), ("auth", "whisk auth"), ("namespace", "whisk namespace"),
          ("cert", "client cert"), ("key", "Client key"), ("apiversion", "whisk API version"),
          ("cliversion", "whisk CLI version"))
_ONE_TAB = ("apiversion", "cliversion", "apibuildno")


async def set_(ctx: Context) -> None:
    props = wskprops.read(ctx.props.path)
    lines = []
    if cert := ctx.flag("cert"):
        props["CERT"] = cert
        lines.append("client cert set. Run 'wsk property get --cert' to see the new value.")
    if key := ctx.flag("key"):
        props["KEY"] = key
        lines.append("client key set. Run 'wsk property get --key' to see the new value.")
    if auth := ctx.flag("auth"):
        props["AUTH"] = auth
        lines.append("whisk auth set. Run 'wsk property get --auth' to see the new value.")
    if apihost := ctx.flag("apihost"):
        props["APIHOST"] = apihost
        lines.append(f"whisk API host set to {ctx.out.bold(apihost)}")
    if apiversion := ctx.flag("apiversion"):
        props["APIVERSION"] = apiversion
        lines.append(f"whisk API version set to {ctx.out.bold(apiversion)}")
    try:
        wskprops.write(ctx.props.path, props)
    except CliError as exc:
        raise exc.within("Unable to set the property value(s)") from None
    for line in lines:
        ctx.out.ok(line)


async def unset(ctx: Context) -> None:
    props = wskprops.read(ctx.props.path)
    lines = []
    for flag, key, text in (("cert", "CERT", "client cert unset."), ("key", "KEY", "client key unset."),
                            ("auth", "AUTH", "whisk auth unset."), ("apihost", "APIHOST", "whisk API host unset."),
                            ("apiversion", "APIVERSION", "whisk API version unset; the default value of "
                             f"{ctx.out.bold(wskprops.DEFAULT_APIVERSION)} will be used.")):
        if ctx.flag(flag):
            props.pop(key, None)
            lines.append(text)
    try:
        wskprops.write(ctx.props.path, props)
    except CliError as exc:
        raise exc.within("Unable to unset the property value") from None
    for line in lines:
        ctx.out.ok(line)


async def _namespace(ctx: Context) -> str:
    try:
        reply = await ctx.send(Call("GET", "namespaces"))
    except CliError:
        return "_"
    return str(reply.body[0]) if isinstance(reply.body, list) and reply.body else "_"


async def get(ctx: Context) -> None:
    output = ctx.flag("output")
    if output not in ("std", "raw"):
        raise CliError("Supported output format are std|raw")
    out = ctx.out
    chosen = any(ctx.flag(f) for f, _ in _SHOWN) or ctx.flag("apibuild") or ctx.flag("apibuildno")
    everything = ctx.flag("all") or not chosen
    if everything and output != "std":
        raise CliError("--output|-o raw only supported with specific property type")
    props = ctx.props

    async def value(flag: str) -> str:
        if flag == "namespace":
            return await _namespace(ctx)
        if flag == "cliversion":
            return CLI_VERSION
        return str(getattr(props, flag))

    def show(flag: str, label: str, text: str) -> None:
        if output == "raw":
            out.line(out.bold(text))
        else:
            out.line(f"{label}{chr(9) if flag in _ONE_TAB else chr(9) * 2}{out.bold(text)}")

    if everything:
        for flag, label in _SHOWN:
            show(flag, label, await value(flag))
    else:
        for flag, label in (*_SHOWN[:5], _SHOWN[6], _SHOWN[5]):   # single properties: CLI before API version
            if ctx.flag(flag):
                show(flag, label, await value(flag))
    if everything or ctx.flag("apibuild") or ctx.flag("apibuildno"):
        failure = None
        try:
            reply = await ctx.send(Call("GET", "", auth=False))
            info = reply.body if isinstance(reply.body, dict) else {}
            build, buildno = str(info.get("build", "")), str(info.get("buildno", ""))
        except CliError as exc:
            failure, build, buildno = exc, "Unknown", "Unknown"
        if everything or ctx.flag("apibuild"):
            show("apibuild", "whisk API build", build)
        if everything or ctx.flag("apibuildno"):
            show("apibuildno", "whisk API build number", buildno)
        if failure is not None:
            # the inner error's exit status, as `wsk` (3 for no connection, an HTTP error's status mod 256)
            raise failure.within("Unable to obtain API build information") from None


def _bools(*specs: tuple[str, str]) -> tuple[Flag, ...]:
    return tuple(Flag(name, "", BOOL, help=text) for name, text in specs)


_UNSET_FLAGS = _bools(("cert", "client cert"), ("key", "Client key"), ("auth", "authorization key"),
                      ("apihost", "whisk API host"), ("apiversion", "whisk API version"))

GROUP = Command("property", "work with whisk properties", children=(
    Command("set", "set property", (
        Flag("auth", "u", STRING, help="authorization `KEY`"),
        Flag("cert", "", STRING, help="client cert"),
        Flag("key", "", STRING, help="Client key"),
        Flag("apihost", "", STRING, help="whisk API `HOST`"),
        Flag("apiversion", "", STRING, help="whisk API `VERSION`"),
    ), set_),
    Command("unset", "unset property", _UNSET_FLAGS, unset),
    Command("get", "get property", (
        *_UNSET_FLAGS,
        *_bools(("apibuild", "whisk API build version"), ("apibuildno", "whisk API build number"),
                ("cliversion", "whisk CLI version"), ("namespace", "whisk namespace"), ("all", "all properties")),
        Flag("output", "o", STRING, "std", "Output format in std|raw"),
    ), get),
))
