"""Names as people type them: one way to compare venue and city names, and the nearest ones.

A person writes "L’Arpege", "l'arpège" or "L'Arpège" for the same restaurant, and every
lookup by name in Errand (the sandbox's catalog, the provider adapters, the bookings
service) compares names through :func:`normalise`, so all three find one venue:

- Unicode NFKD, then combining marks dropped (``è`` → ``e``, ``ﬁ`` → ``fi``);
- apostrophe look-alikes (’ ‘ ʼ ` ´ ′) folded to ``'``;
- case folded (``ß`` → ``ss``);
- runs of whitespace collapsed to one space, and the ends stripped.

:func:`nearest` answers "did you mean …?" with the standard library's
:func:`difflib.get_close_matches` over normalised names: venue lists are short (a city's
restaurants), so its ratio is fast enough and no extra dependency is needed.
"""

import difflib
import re
import unicodedata
from collections.abc import Iterable

_APOSTROPHES = str.maketrans({c: "'" for c in "\u2019\u2018\u02bc`\u00b4\u2032\u201b"})
_SPACES = re.compile(r"\s+")
# How alike (difflib's ratio, 0..1) a name must be to be suggested: "Le Bernadin" → "Le Bernardin"
# is 0.96, while two names sharing only a word ("Hotel Nowhere", "Hotel Lutetia") stay below it.
SUGGESTION_CUTOFF = 0.75
MAX_SUGGESTIONS = 3
# Names longer than any venue's are cut before comparing, so a hostile name costs no more than a real one.
MAX_NAME_LENGTH = 200


def normalise(name: str) -> str:
    """The form two names are compared in: see the module doc. ``normalise("L’Arpège") == "l'arpege"``."""
    decomposed = unicodedata.normalize("NFKD", name)
    bare = "".join(c for c in decomposed if not unicodedata.combining(c))
    return _SPACES.sub(" ", bare.translate(_APOSTROPHES).casefold()).strip()


def same(a: str | None, b: str | None) -> bool:
    """Whether two names are one after :func:`normalise`; None matches nothing."""
    return a is not None and b is not None and normalise(a) == normalise(b)


def nearest(name: str, candidates: Iterable[str], limit: int = MAX_SUGGESTIONS,
            cutoff: float = SUGGESTION_CUTOFF, keep_equal: bool = False) -> list[str]:
    """Up to ``limit`` of ``candidates`` most like ``name``, best first, as the candidates spell them.

    Candidates equal to ``name`` after normalising are left out (they are not a correction),
    unless ``keep_equal`` (the name is right and something else, such as the city, is not).
    """
    wanted = normalise(name[:MAX_NAME_LENGTH])
    spelled: dict[str, str] = {}
    for candidate in candidates:
        spelled.setdefault(normalise(candidate), candidate)
    if not keep_equal:
        spelled.pop(wanted, None)
    return [spelled[n] for n in difflib.get_close_matches(wanted, list(spelled), n=limit, cutoff=cutoff)]
