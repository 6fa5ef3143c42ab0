"""Packages and package bindings (docs/openwhisk.md §1.9, §2.6; OpenWhisk `E/WhiskPackage.scala`).

A binding is a package whose `binding` names another package; it is stored as `{}` for a real package, so stored
documents can tell the two apart. Packages do not nest.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from whisk.entities.document import (body_object, common_json, now_ms, opt_bool, opt_params, opt_version,
                                     read_params, read_version, stored)
from whisk.entities.errors import Invalid, Unprocessable
from whisk.entities.names import (DEFAULT_NAMESPACE, Addressed, EntityName, EntityPath, FullyQualifiedEntityName,
                                  is_name)
from whisk.entities.parameters import EMPTY, Parameters
from whisk.entities.semver import SemVer

RESERVED_NAMES = frozenset({"default"})
BINDING_ANNOTATION = "binding"


@dataclass(frozen=True, slots=True)
class Binding:
    namespace: str
    name: str

    @classmethod
    def from_json(cls, value: Any) -> Binding | None:
        """`{}` means no binding; anything else is read as OpenWhisk's `Binding.serdes` reads it (spray's
        `jsonFormat2`, field by field), with its words: `null` too is a binding that is not an object."""
        if not isinstance(value, dict):
            raise Invalid("Object expected in field 'namespace'")
        if not value:
            return None
        for field in ("namespace", "name"):
            if field not in value:
                raise Invalid(f"Object is missing required member '{field}'")
            if not (isinstance(value[field], str) and is_name(value[field])):
                raise Invalid("entity name malformed")
        return cls(value["namespace"], value["name"])

    @property
    def fqn(self) -> FullyQualifiedEntityName:
        return FullyQualifiedEntityName(EntityPath.of(self.namespace), self.name)

    @property
    def doc_id(self) -> str:
        return f"{self.namespace}/{self.name}"

    def resolve(self, namespace: str) -> Binding:
        return Binding(namespace, self.name) if self.namespace == DEFAULT_NAMESPACE else self

    def to_json(self) -> dict[str, str]:
        return {"namespace": self.namespace, "name": self.name}

    def circular(self) -> Unprocessable:
        """The refusal of a binding that leads back to itself (OpenWhisk `packageBindingCircularReference`)."""
        return Unprocessable(f"Package binding '{self.doc_id}' contains a circular reference.")


@dataclass(frozen=True, slots=True)
class Package(Addressed):
    ENTITY_TYPE: ClassVar[str] = "package"

    namespace: EntityPath
    name: str
    binding: Binding | None = None
    parameters: Parameters = EMPTY
    version: SemVer = SemVer()
    publish: bool = False
    annotations: Parameters = EMPTY
    updated: int = 0
    rev: str | None = None

    @property
    def full_path(self) -> EntityPath:
        """The path of the actions inside this package."""
        return self.namespace.add(self.name)

    def to_json(self) -> dict[str, Any]:
        out = common_json(str(self.namespace), self.name, self.version, self.publish, self.annotations, self.updated)
        out.update(binding=self.binding.to_json() if self.binding else {}, parameters=self.parameters.to_json())
        return out

    def to_doc(self) -> dict[str, Any]:
        return stored(self.to_json(), self.ENTITY_TYPE, self.doc_id, self.rev)

    def summary(self) -> dict[str, Any]:
        return {"namespace": str(self.namespace), "name": self.name, "version": str(self.version),
                "publish": self.publish, "annotations": self.annotations.to_json(), "updated": self.updated,
                "binding": self.binding.to_json() if self.binding else False}

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> Package:
        try:
            binding = Binding.from_json(doc.get("binding") or {})
        except Invalid:
            binding = None
        return cls(EntityPath.parse(doc["namespace"]), doc["name"], binding, read_params(doc, "parameters"),
                   read_version(doc), bool(doc.get("publish", False)), read_params(doc, "annotations"),
                   int(doc.get("updated", 0)), doc.get("_rev"))


def _binding_annotation(annotations: Parameters, binding: Binding | None) -> Parameters:
    """The controller owns the `binding` annotation: strip the user's, set it for a binding."""
    annotations = annotations.without(BINDING_ANNOTATION)
    return annotations.with_value(BINDING_ANNOTATION, binding.to_json()) if binding else annotations


@dataclass(frozen=True, slots=True)
class PackagePut:
    binding: Binding | None = None
    parameters: Parameters | None = None
    version: SemVer | None = None
    publish: bool | None = None
    annotations: Parameters | None = None

    @classmethod
    def from_json(cls, value: Any) -> PackagePut:
        body = body_object(value)
        return cls(Binding.from_json(body["binding"]) if "binding" in body else None, opt_params(body, "parameters"),
                   opt_version(body), opt_bool(body, "publish"), opt_params(body, "annotations"))

    def resolve(self, namespace: str) -> PackagePut:
        if self.binding is None:
            return self
        return PackagePut(self.binding.resolve(namespace), self.parameters, self.version, self.publish,
                          self.annotations)

    def create(self, namespace: EntityPath, name: str) -> Package:
        return Package(namespace, EntityName(name).value, self.binding, self.parameters or EMPTY,
                       self.version or SemVer(), bool(self.publish),
                       _binding_annotation(self.annotations or EMPTY, self.binding), now_ms())

    def update(self, old: Package) -> Package:
        binding = self.binding or old.binding
        return Package(old.namespace, old.name, binding,
                       old.parameters if self.parameters is None else self.parameters,
                       self.version or old.version.up_patch(), old.publish if self.publish is None else self.publish,
                       _binding_annotation(old.annotations if self.annotations is None else self.annotations,
                                           binding),
                       now_ms(), old.rev)


def package_action(doc_or_summary: dict[str, Any]) -> dict[str, Any]:
    """An entry of a package's `actions`/`feeds` list: `{name, version, annotations}`."""
    return {"name": doc_or_summary["name"], "version": doc_or_summary.get("version", "0.0.1"),
            "annotations": doc_or_summary.get("annotations") or []}
