"""Limits checked before a query runs: tokens, depth, aliases, page sizes and estimated cost.

The cost is GitHub's node limit: the rows a query may return, each connection's
first/last multiplied by the rows of the connections around it, lists counted at a
typical size. The rate limiter (api/auth.py) may charge a request by it.
"""

from __future__ import annotations

from typing import Any

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    ValidationContext,
    ValidationRule,
)
from graphql.execution.values import VariableValues, get_argument_values
from graphql.type import GraphQLInterfaceType, GraphQLNamedType, get_named_type
from strawberry.extensions import max_aliases, query_depth_limiter

from db.filters import DEFAULT_LIMIT, MAX_GRAPHQL_PAGE
from schema.errors import BAD_USER_INPUT, QUERY_TOO_COMPLEX

MAX_DEPTH = 10
MAX_ALIASES = 30
MAX_TOKENS = 2000
COST_BUDGET = 25_000  # rows: 100 entries x 100 nested entries is over it
LIST_SIZE = 10  # a non-paginated list of objects (an entry's actors, a location's children) counts as this many rows


def _coded_rule(rule: type[ValidationRule], code: str) -> type[ValidationRule]:
    """`rule` reporting its errors with `extensions.code` (Strawberry's validators report none)."""

    class Coded(ValidationRule):
        def __init__(self, context: ValidationContext) -> None:
            report = context.report_error

            def report_coded(error: GraphQLError) -> None:
                report(GraphQLError(error.message, error.nodes, extensions={"code": code}))

            context.report_error = report_coded  # type: ignore[method-assign]
            try:
                rule(context)
            finally:
                del context.report_error
            super().__init__(context)

    return Coded


VALIDATION_RULES: list[type[ValidationRule]] = [
    _coded_rule(query_depth_limiter.create_validator(MAX_DEPTH, None), QUERY_TOO_COMPLEX),
    _coded_rule(max_aliases.create_validator(MAX_ALIASES), QUERY_TOO_COMPLEX),
]


def is_token_limit(error: GraphQLError) -> bool:
    return "tokens. Parsing aborted" in error.message


class Estimate:
    """Walks an operation once: checks first/last and adds up the rows it may return."""

    def __init__(
        self, schema: GraphQLSchema, fragments: dict[str, FragmentDefinitionNode], variables: VariableValues
    ) -> None:
        self.schema = schema
        self.fragments = fragments
        self.variables = variables
        self.errors: list[GraphQLError] = []
        self.cost = 0

    def selection(self, parent: GraphQLNamedType, selection_set: SelectionSetNode | None, rows: int) -> None:
        if selection_set is None:
            return
        for node in selection_set.selections:
            if isinstance(node, FieldNode):
                self.field(parent, node, rows)
            elif isinstance(node, InlineFragmentNode):
                cond = self.schema.get_type(node.type_condition.name.value) if node.type_condition else parent
                self.selection(cond or parent, node.selection_set, rows)
            elif isinstance(node, FragmentSpreadNode):
                fragment = self.fragments.get(node.name.value)
                if fragment is not None:
                    cond = self.schema.get_type(fragment.type_condition.name.value)
                    self.selection(cond or parent, fragment.selection_set, rows)

    def field(self, parent: GraphQLNamedType, node: FieldNode, rows: int) -> None:
        if not isinstance(parent, GraphQLObjectType | GraphQLInterfaceType):
            return
        field_def = parent.fields.get(node.name.value)
        if field_def is None:
            return
        args = get_argument_values(field_def, node, self.variables) if field_def.args else {}
        named = get_named_type(field_def.type)
        if named.name.endswith("Connection"):
            rows *= self.page_size(node, args)
            self.cost += rows
        elif "ids" in args:
            rows *= len(args["ids"] or ())
            self.cost += rows
        elif (
            _is_list(field_def.type)
            and isinstance(named, GraphQLObjectType | GraphQLInterfaceType)
            and not parent.name.endswith("Connection")  # its edges and nodes are the rows counted above
        ):
            rows *= LIST_SIZE
            self.cost += rows
        self.selection(named, node.selection_set, rows)

    def page_size(self, node: FieldNode, args: dict[str, Any]) -> int:
        first, last = args.get("first"), args.get("last")
        for name, value in (("first", first), ("last", last)):
            if value is not None and not 0 <= value <= MAX_GRAPHQL_PAGE:
                self.errors.append(
                    GraphQLError(
                        f"{name} must be between 0 and {MAX_GRAPHQL_PAGE}, got {value}",
                        node,
                        extensions={"code": BAD_USER_INPUT},
                    )
                )
                return 0
        if first is not None and last is not None:
            self.errors.append(GraphQLError("Pass first or last, not both", node, extensions={"code": BAD_USER_INPUT}))
            return 0
        size = first if first is not None else last
        return DEFAULT_LIMIT if size is None else int(size)


def _is_list(type_: Any) -> bool:
    if isinstance(type_, GraphQLNonNull):
        type_ = type_.of_type
    return isinstance(type_, GraphQLList)


def estimate(
    schema: GraphQLSchema,
    operation: OperationDefinitionNode,
    fragments: dict[str, FragmentDefinitionNode],
    variables: VariableValues,
    budget: int = COST_BUDGET,
) -> tuple[int, list[GraphQLError]]:
    """(estimated rows, errors): page sizes out of range, or a cost over the budget."""
    root = schema.get_root_type(operation.operation)
    walk = Estimate(schema, fragments, variables)
    if root is not None:
        walk.selection(root, operation.selection_set, 1)
    if not walk.errors and walk.cost > budget:
        walk.errors.append(
            GraphQLError(
                f"Query is estimated to return {walk.cost} rows, over the budget of {budget}; ask for smaller pages",
                operation,
                extensions={"code": QUERY_TOO_COMPLEX, "cost": walk.cost, "budget": budget},
            )
        )
    return walk.cost, walk.errors
