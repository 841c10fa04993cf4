"""`one_of(column, "ids")`: column IN a list given at execution as one parameter
(`one_of(column, "kinds", [...])`: a fixed list, also one parameter).

SQLAlchemy's expanding IN renders a placeholder per value and rewrites the statement text on
every execution; on the hot path that rewrite cost more than the query. Here the list travels as
one parameter and the SQL text never changes: `= ANY($1)` on PostgreSQL, and on SQLite an IN
over `json_each` of the list as JSON text. Both use the column's index.
"""

from __future__ import annotations

from typing import Any, ClassVar

from sqlalchemy import Boolean, String, TypeDecorator, bindparam
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.elements import BindParameter, ColumnElement
from sqlalchemy.sql.visitors import InternalTraversal

from contactcenter.wire import dumps


class _List(TypeDecorator[list[Any]]):
    impl = String
    cache_ok = True

    def __init__(self, item: Any) -> None:
        super().__init__()
        self.item = item

    def load_dialect_impl(self, dialect: Any) -> Any:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(ARRAY(self.item))
        return dialect.type_descriptor(String())

    def process_bind_param(self, value: Any, dialect: Any) -> Any:
        values = list(value)
        return values if dialect.name == "postgresql" else dumps(values)


class OneOf(ColumnElement[bool]):
    inherit_cache = True
    type = Boolean()
    _is_implicitly_boolean = True  # a condition already: no '= 1' after it on SQLite
    _traverse_internals: ClassVar[list[tuple[str, Any]]] = [
        ("column", InternalTraversal.dp_clauseelement),
        ("values", InternalTraversal.dp_clauseelement),
    ]

    def __init__(self, column: ColumnElement[Any], values: BindParameter[Any]) -> None:
        self.column = column
        self.values = values

    @property
    def _from_objects(self) -> list[Any]:
        return self.column._from_objects


def one_of(column: Any, name: str, values: list[Any] | None = None) -> OneOf:
    return OneOf(column, bindparam(name, values, type_=_List(column.type),
                                   required=values is None))


@compiles(OneOf, "postgresql")
def _any(element: OneOf, compiler: Any, **kw: Any) -> str:
    column, values = compiler.process(element.column, **kw), compiler.process(element.values, **kw)
    return f"{column} = ANY({values})"


@compiles(OneOf)
def _json_each(element: OneOf, compiler: Any, **kw: Any) -> str:
    return (f"{compiler.process(element.column, **kw)} IN "
            f"(SELECT value FROM json_each({compiler.process(element.values, **kw)}))")
