"""One module per search parameter type (http://hl7.org/fhir/R4/search.html#ptypes).

Each module provides the same things, so the engine never special-cases a type:

    COLUMNS: tuple[str, ...]
        the kind-specific columns of its index rows (after rid, param, grp)
    LOOKUP: list[tuple[str, ...]]
        the column sets the stores index, each led by the parameter ("rid" orders ties)
    rows(values, param) -> list[tuple]
        index rows from the values a parameter's expression yielded; values are
        (json value, FHIR type name or None) pairs (search/fhirpath.py)
    parse(param, modifier, value) -> condition
        one comma-separated alternative of a query value, with its modifier
        ('' when none) and prefix (for ordered types); raises BadRequest
    sql(condition, alias) -> (sql, args)
        a SQL boolean over alias.<column>; every value a bound parameter
    match(condition, row) -> bool
        the reference semantics in Python (the matcher); must agree with sql()
    mongo(condition) -> dict
        the same test as a MongoDB filter over one index element {p, g, <COLUMNS>}
        (queried as {"ix.<kind>": {"$elemMatch": {"p": key, **mongo(condition)}}});
        field names only COLUMNS, values only under $eq/$in/$gt(e)/$lt(e) (joined by
        $and/$or/$not; string prefixes are ranges) or, for string :contains, an
        re.escape()d $regex; no $where, no $expr. Exact, except special (near): a
        bounding box, a superset of match(), so the caller must recheck match() on the
        rows of each resource found

A condition is a small frozen dataclass of the module's own. Modifiers the engine
handles for every type (:missing, :not on tokens, :[type] and chains on
references) do not reach parse().
"""
from __future__ import annotations

from importlib import import_module

KIND_MODULES = {
    name: import_module(f"{__name__}.{name}_kind")
    for name in ("string", "token", "date", "number", "quantity", "reference", "uri", "special")
}


def kind(name: str):
    return KIND_MODULES[name]
