"""What a ticket code may look like, and how a list of them (pasted, or a box-office CSV) is
read: shared by the pool's import (tickets.services) and the door (tickets.checkin)."""

import csv
import re
from dataclasses import dataclass

from tickets.models import Ticket

MAX_CODE_LENGTH = Ticket._meta.get_field("code").max_length

# Box-office codes are read aloud at the door and typed into scanners: anything outside this set
# is far more likely an export glitch (a stray quote, a non-breaking space) than a real code.
CODE_PATTERN = re.compile(r"[A-Za-z0-9\-_./]+")
ALLOWED_CHARACTERS = "letters A–Z, digits and - _ . /"
HEADER_NAMES = frozenset(
    {"code", "codes", "ticket", "tickets", "ticket code", "ticket codes", "barcode", "ticket id"}
)


@dataclass(frozen=True)
class ImportProblem:
    line: int | None  # None: about the file as a whole
    message: str

    def __str__(self) -> str:
        return f"Line {self.line}: {self.message}" if self.line else self.message


def quoted_code(code: str, limit: int = 24) -> str:
    return f"“{code if len(code) <= limit else code[: limit - 1] + '…'}”"


def _describe_character(char: str) -> str:
    return char if char.isprintable() and not char.isspace() else f"U+{ord(char):04X}"


def _pick_delimiter(first_line: str) -> str:
    # Spreadsheets in some locales export with ";" or tabs; a code can contain none of them.
    for delimiter in (",", ";", "\t"):
        if delimiter in first_line:
            return delimiter
    return ","


def _is_header(cell: str) -> bool:
    return " ".join(cell.lower().replace("_", " ").replace("-", " ").split()) in HEADER_NAMES


def parse_ticket_codes(text: str) -> tuple[list[tuple[int, str]], list[ImportProblem]]:
    """Read codes from pasted text or a CSV file: one per line, or the FIRST column of a CSV.

    Rules, decided so that a clean export goes in unchanged and a damaged one is caught:
    - Spaces around a code are stripped; quotes of a CSV cell are removed.
    - An optional header on the first line ("code", "ticket code", …) is skipped.
    - Blank lines (or rows whose cells are all empty) before the first code and after the last one
      are ignored: editors and spreadsheets add them. A blank line *between* codes is reported,
      because a hole in a box-office list usually means a row was lost.
    - A row with other cells but an empty first cell is reported (the code column is missing).
    - A code longer than 64 characters, or with characters other than ASCII letters, digits and
      - _ . /, is reported. Codes are case-sensitive, as the database compares them.

    Returns (line number, code) pairs and the problems found, both in line order."""
    lines = re.split(r"\r\n|\r|\n", text)
    rows: list[tuple[int, list[str]]] = []
    delimiter = None
    for number, line in enumerate(lines, start=1):
        if delimiter is None and line.strip():
            delimiter = _pick_delimiter(line)
        cells = next(csv.reader([line], delimiter=delimiter or ","), [])
        rows.append((number, [cell.strip() for cell in cells]))

    filled = [i for i, (_, cells) in enumerate(rows) if any(cells)]
    if not filled:
        return [], []
    rows = rows[filled[0] : filled[-1] + 1]
    if rows[0][1] and _is_header(rows[0][1][0]):
        rows = rows[1:]

    codes: list[tuple[int, str]] = []
    problems: list[ImportProblem] = []
    for number, cells in rows:
        code = cells[0] if cells else ""
        if not any(cells):
            problems.append(ImportProblem(number, "empty line between codes."))
        elif not code:
            problems.append(ImportProblem(number, "no code in the first column."))
        elif len(code) > MAX_CODE_LENGTH:
            problems.append(
                ImportProblem(
                    number,
                    f"{quoted_code(code)} is {len(code)} characters long; "
                    f"a code has {MAX_CODE_LENGTH} at most.",
                )
            )
        elif not CODE_PATTERN.fullmatch(code):
            bad = sorted({_describe_character(c) for c in code if not CODE_PATTERN.fullmatch(c)})
            problems.append(
                ImportProblem(
                    number,
                    f"{quoted_code(code)} contains {', '.join(bad)}; "
                    f"codes may only use {ALLOWED_CHARACTERS}.",
                )
            )
        else:
            codes.append((number, code))
    return codes, problems
