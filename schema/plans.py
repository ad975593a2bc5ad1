"""Plans: each GraphQL document parsed, validated and compiled once, kept by its SHA-256.

The key is the SHA-256 of the document's text, the hash Automatic Persisted Queries name a
document by, so a document costs one parse and one validation whether it comes by POST, by
GET or by its APQ hash. What is kept per document:

- the parsed document and its fragments (only a valid document is kept: an invalid one is
  parsed again each time, and never takes a place in the cache);
- per operation (by name): its definition, the names of the variables its @skip/@include
  read, and its compiled program (schema/compiled.py) per value of those variables (booleans,
  so few); `None` when the compiled path does not take it.

Arguments (first, filter, cursors) are read at run time, so different variables give
different answers from the same plan. At most `MAX_PLANS` documents are kept, the least
recently used going first; documents over `MAX_QUERY` characters are not kept.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from typing import Any

from graphql import (
    DirectiveNode,
    DocumentNode,
    FragmentDefinitionNode,
    GraphQLError,
    GraphQLSchema,
    OperationDefinitionNode,
    VariableNode,
    parse,
    validate,
    visit,
)
from graphql.execution.values import VariableValues
from graphql.language import Visitor
from graphql.validation import specified_rules

from schema import compiled, limits
from schema.errors import BAD_USER_INPUT, QUERY_TOO_COMPLEX, coded

MAX_PLANS = 512
MAX_QUERY = 20_000  # characters: the cache's memory stays bounded whatever clients send
_NOT_COMPILED = object()
_MAX_ESTIMATES = 64  # per operation: distinct page sizes a client sends are few


def _estimate_key(value: Any) -> Any:
    if value is None or isinstance(value, int):  # bool is an int
        return value
    if isinstance(value, list):
        return ("list", len(value))
    return type(value)


def document_hash(text: str) -> str:
    """The key of a document: the hex SHA-256 of its text (APQ's `sha256Hash`)."""
    return hashlib.sha256(text.encode()).hexdigest()


class OperationPlan:
    """One operation of a document and its compiled programs."""

    def __init__(self, operation: OperationDefinitionNode, fragments: dict[str, FragmentDefinitionNode]) -> None:
        self.operation = operation
        self.fragments = fragments
        self.directive_variables = _directive_variables(operation, fragments)
        self._programs: dict[tuple[Any, ...], compiled.Program | None] = {}
        self._estimates: dict[tuple[Any, ...], tuple[int, list[GraphQLError]]] = {}

    def estimate(self, schema: GraphQLSchema, variables: VariableValues) -> tuple[int, list[GraphQLError]]:
        """`limits.estimate` for these variables, computed once per value of what it reads: page
        sizes (first/last: integers) and the length of id lists; a string or a filter reads as one."""
        key = tuple(_estimate_key(v) for v in variables.coerced.values())
        found = self._estimates.get(key)
        if found is None:
            found = limits.estimate(schema, self.operation, self.fragments, variables)
            if len(self._estimates) >= _MAX_ESTIMATES:
                self._estimates.clear()
            self._estimates[key] = found
        return found

    def program(self, schema: GraphQLSchema, variables: VariableValues) -> compiled.Program | None:
        """The compiled program for these (coerced) variables; None: not compiled."""
        key = tuple(variables.coerced.get(name) for name in self.directive_variables)
        found = self._programs.get(key, _NOT_COMPILED)
        if found is _NOT_COMPILED:
            found = self._programs[key] = compiled.compile_operation(schema, self.operation, self.fragments, variables)
        return found  # type: ignore[return-value]


class Plan:
    """A document: parsed and valid (`document`), or the errors to answer."""

    def __init__(self, sha: str, document: DocumentNode | None, errors: list[GraphQLError]) -> None:
        self.sha = sha
        self.document = document
        self.errors = errors
        self.fragments: dict[str, FragmentDefinitionNode] = {}
        self._operations: dict[str | None, OperationPlan | GraphQLError] = {}
        if document is not None:
            self.fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}

    def operation(self, name: str | None) -> OperationPlan | GraphQLError:
        found = self._operations.get(name)
        if found is None:
            found = self._operations[name] = self._find(name)
        return found

    def _find(self, name: str | None) -> OperationPlan | GraphQLError:
        assert self.document is not None
        operations = [d for d in self.document.definitions if isinstance(d, OperationDefinitionNode)]
        if name is None:
            if len(operations) == 1:
                return OperationPlan(operations[0], self.fragments)
            return GraphQLError("Must provide operation name if query contains multiple operations.")
        for op in operations:
            if op.name and op.name.value == name:
                return OperationPlan(op, self.fragments)
        return GraphQLError(f"Unknown operation named '{name}'.")


class Plans:
    """The per-process cache of plans (LRU by document hash)."""

    def __init__(self, size: int = MAX_PLANS) -> None:
        self.size = size
        self.parses = 0  # documents parsed: what the cache saves
        self._plans: OrderedDict[str, Plan] = OrderedDict()

    def __len__(self) -> int:
        return len(self._plans)

    def __contains__(self, sha: str) -> bool:
        return sha in self._plans

    def clear(self) -> None:
        self._plans.clear()

    def get(self, schema: GraphQLSchema, text: str, sha: str | None = None) -> Plan:
        """The plan of `text` (`sha`: its hash when the caller has it, as APQ does)."""
        sha = sha or document_hash(text)
        found = self._plans.get(sha)
        if found is not None:
            self._plans.move_to_end(sha)
            return found
        plan = self._build(schema, text, sha)
        if plan.document is not None and len(text) <= MAX_QUERY:
            self._plans[sha] = plan
            if len(self._plans) > self.size:
                self._plans.popitem(last=False)
        return plan

    def _build(self, schema: GraphQLSchema, text: str, sha: str) -> Plan:
        self.parses += 1
        try:
            document = parse(text, max_tokens=limits.MAX_TOKENS)
        except GraphQLError as error:
            code = QUERY_TOO_COMPLEX if limits.is_token_limit(error) else BAD_USER_INPUT
            coded_error = GraphQLError(
                error.message, error.nodes, error.source, error.positions, extensions={"code": code}
            )
            return Plan(sha, None, [coded_error])
        # the limits walk the document assuming it is valid (an undefined fragment would crash them)
        errors = validate(schema, document, specified_rules) or validate(schema, document, limits.VALIDATION_RULES)
        if errors:
            return Plan(sha, None, [coded(e) for e in errors])
        return Plan(sha, document, [])


PLANS = Plans()


class _DirectiveVariables(Visitor):
    def __init__(self) -> None:
        super().__init__()
        self.names: list[str] = []

    def enter_directive(self, node: DirectiveNode, *_: Any) -> None:
        if node.name.value in ("skip", "include"):
            for argument in node.arguments or ():
                if isinstance(argument.value, VariableNode) and argument.value.name.value not in self.names:
                    self.names.append(argument.value.name.value)


def _directive_variables(
    operation: OperationDefinitionNode, fragments: dict[str, FragmentDefinitionNode]
) -> tuple[str, ...]:
    """The variables any @skip/@include of the operation or of a fragment reads."""
    visitor = _DirectiveVariables()
    visit(operation, visitor)
    for fragment in fragments.values():
        visit(fragment, visitor)
    return tuple(visitor.names)
