"""Token modifiers that need terminology (http://hl7.org/fhir/R4/search.html#token, #modifiers):

    code:in=[value set]           a coding in the value set's expansion
    code:not-in=[value set]       no coding in it (the complement of :in over the resource)
    code:below=[system]|[code]    the code or one it subsumes (is-a) in that code system
    code:above=[system]|[code]    the code or one that subsumes it

Each is expanded while the query is parsed into one plain token condition, an IN-set over the token
index (token_kind.CodeIn), so every store answers it with the index it has and no terminology at
query time. The terminology is the server's (fhirserver.terminology.for_store); parse_search takes
it as an argument, and where a caller has none (a granular scope's query, a subscription filter)
these modifiers answer 400 "not available here" rather than guess. Comma-separated values are one
set (their union). Bounded: one search may draw at most MAX_CODES codes in all (400 too-costly).
"""
from __future__ import annotations

from ..errors import BadRequest, NotFound, TooCostly
from . import query as q
from .kinds.token_kind import CodeIn
from .parse_util import split_unescaped, unescape

MODIFIERS = ("in", "not-in", "below", "above")
MAX_CODES = 10_000           # as the terminology engine's expansion limit


class TokenSets:
    """The terminology one parse uses, and the codes its token sets have drawn so far."""

    def __init__(self, terminology):
        self.terminology = terminology
        self.used = 0

    def clause(self, param, modifier: str, alts: list[str]):
        """The query node for param:modifier=alts."""
        name = f"{param.code}:{modifier}"
        if self.terminology is None:
            raise BadRequest(f"The :{modifier} modifier ('{name}') is not available here: it needs the "
                             "server's terminology, which this query is parsed without")
        pairs: set[tuple[str, str]] = set()
        for raw in alts:
            pairs |= self._codes(name, modifier, raw)
        self.used += len(pairs)
        if self.used > MAX_CODES:
            raise TooCostly(f"'{name}' draws on more than {MAX_CODES} codes in this search; use a smaller "
                            "value set or a narrower code")
        node = q.Match("token", param.key, CodeIn(frozenset(pairs)))
        return q.Not(node) if modifier == "not-in" else node

    def _codes(self, name: str, modifier: str, raw: str) -> set[tuple[str, str]]:
        if modifier in ("in", "not-in"):
            valueset = unescape(raw)
            try:
                return set(self.terminology.codes(valueset))
            except NotFound:
                raise BadRequest(f"Unknown value set '{valueset}' in '{name}': this server has no "
                                 "ValueSet with that canonical URL") from None
        parts = [unescape(p) for p in split_unescaped(raw, "|")]
        if len(parts) != 2 or not all(parts):
            raise BadRequest(f"'{name}' needs [system]|[code] (a code in a code system), got {raw!r}")
        system, code = parts
        found = (self.terminology.descendants if modifier == "below" else self.terminology.ancestors)(system, code)
        if not found:
            raise BadRequest(f"'{name}': code '{code}' is not known in code system '{system}' on this server")
        return {(system, c) for c in found}
