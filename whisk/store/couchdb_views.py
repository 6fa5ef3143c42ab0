"""The CouchDB design documents of the store, one per database, as `couchdb.py` installs them on start.

Map functions are JavaScript, run by the server. Keys end in the sort field, so a descending range query lists
newest first; rows with equal keys fall back to the document id, descending, as the other adapters order them.

A design document's id carries a digest of its views (`_design/whisks.<digest>`), as OpenWhisk names its own by
version (`whisks.v2.1.0`): whisks of two versions on one CouchDB (a rolling upgrade, or an old one restarted during
it) each query the views they were written for. Under one id, each start replaced the other's views: an older whisk
(its views emit no value, its listings read the documents) left a newer one's listings empty, without an error.
"""

from __future__ import annotations

import hashlib
import json

from whisk.store.base import Doc

# An entity is listed under its own namespace and, when inside a package, under the root namespace too
# (docs/openwhisk.md §1.4). The value is what `list` returns (whisk.store.base.listed): the document without an action's
# code, so listings read the view alone and never one tenant's megabytes of code.
_ENTITIES = r"""function (doc) {
  if (typeof doc.entityType !== "string" || typeof doc.namespace !== "string") return;
  var updated = typeof doc.updated === "number" ? doc.updated : 0;
  var root = doc.namespace.split("/")[0];
  var value = {}, k;
  for (k in doc) if (k !== "exec") value[k] = doc[k];
  if (doc.exec && typeof doc.exec === "object") {
    value.exec = {};
    for (k in doc.exec) if (k !== "code") value.exec[k] = doc.exec[k];
    if (value.exec.binary === undefined && typeof doc.exec.code === "string") {
      var t = doc.exec.code.trim();
      value.exec.binary = t.length > 0 && t.length % 4 === 0 &&
        /^([A-Za-z0-9+\/]{4})*([A-Za-z0-9+\/]{4}|[A-Za-z0-9+\/]{3}=|[A-Za-z0-9+\/]{2}==)$/.test(t);
    }
  }
  emit([doc.entityType, doc.namespace, updated], value);
  if (root !== doc.namespace) emit([doc.entityType, root, updated], value);
}"""

# An activation's value is what a listing without docs returns (whisk.store.base.summary_of): the record without its
# logs and its result, so such listings read the view alone and never a tenant's megabytes of logs.
_SUMMARY = """
  var value = {}, k;
  for (k in doc) if (k !== "logs" && k !== "_rev") value[k] = doc[k];
  if (doc.response && typeof doc.response === "object" && !Array.isArray(doc.response)) {
    value.response = {};
    for (k in doc.response) if (k !== "result") value.response[k] = doc.response[k];
  }"""

_BY_START = """function (doc) {
  if (doc.activationId === undefined || typeof doc.namespace !== "string") return;%s
  emit([doc.namespace, typeof doc.start === "number" ? doc.start : 0], value);
}""" % _SUMMARY

# The same rule as whisk.store.base.activation_list_name: "[package/]name", the package from `binding`, else `path`.
_BY_NAME = """function (doc) {
  if (doc.activationId === undefined || typeof doc.namespace !== "string") return;
  var name = typeof doc.name === "string" ? doc.name : "", binding = null, path = null, listed = name;
  (doc.annotations || []).forEach(function (a) {
    if (a && a.key === "binding") binding = a.value;
    if (a && a.key === "path") path = a.value;
  });
  if (typeof binding === "string" && binding) {
    var slash = binding.indexOf("/");
    listed = (slash < 0 ? binding : binding.slice(slash + 1)) + "/" + name;
  } else if (typeof path === "string" && path.split("/").length >= 3) {
    listed = path.split("/")[1] + "/" + name;
  }%s
  emit([doc.namespace, listed, typeof doc.start === "number" ? doc.start : 0], value);
}""" % _SUMMARY

_NAMESPACE_BY = """function (doc) {
  if (!Array.isArray(doc.namespaces)) return;
  doc.namespaces.forEach(function (ns, i) { if (ns && typeof ns.%s === "string") emit(ns.%s, i); });
}"""

# What an invoker refuses activations by (whisk.store.base.namespace_states, OpenWhisk's `blockedNamespaces` view with
# the namespaces' uuids beside it): each namespace of a subject with its uuid and whether the subject is blocked, and
# a namespace whose limits document sets invocations per minute or concurrent invocations to 0 as blocked.
_STATES = r"""function (doc) {
  if (Array.isArray(doc.namespaces)) {
    doc.namespaces.forEach(function (ns) {
      if (ns && typeof ns.name === "string") emit(ns.name, {uuid: ns.uuid, blocked: doc.blocked === true});
    });
  } else if (typeof doc._id === "string" && /\/limits$/.test(doc._id)) {
    var zero = function (v) { return typeof v === "number" && v === 0; };
    if (zero(doc.invocationsPerMinute) || zero(doc.concurrentInvocations))
      emit(doc._id.slice(0, -"/limits".length), {blocked: true});
  }
}"""


def _design(name: str, views: Doc) -> Doc:
    digest = hashlib.sha256(json.dumps(views, sort_keys=True).encode()).hexdigest()[:12]
    return {"_id": f"_design/{name}.{digest}", "language": "javascript", "views": views}


DESIGN_DOCS: dict[str, Doc] = {
    "whisks": _design("whisks", {"entities": {"map": _ENTITIES, "reduce": "_count"}}),
    "activations": _design("activations", {"byStart": {"map": _BY_START, "reduce": "_count"},
                                           "byName": {"map": _BY_NAME, "reduce": "_count"}}),
    "subjects": _design("subjects", {"byUuid": {"map": _NAMESPACE_BY % ("uuid", "uuid")},
                                     "byName": {"map": _NAMESPACE_BY % ("name", "name")},
                                     "states": {"map": _STATES}}),
}


def stale_designs(key: str, ids: list[str]) -> list[str]:
    """Of a database's design document ids, those an older or newer whisk installed for `key` ("whisks", ...): the
    unversioned one of whisks before the digests, and any other digest."""
    current = DESIGN_DOCS[key]["_id"]
    family = current.rsplit(".", 1)[0]
    return [i for i in ids if i != current and (i == family or i.startswith(family + "."))]
