"""URL converters shared by every app."""

from django.urls import register_converter


class RowIdConverter:
    """A positive id that fits the database's 64-bit integer: longer numbers are a 404 rather
    than an OverflowError (a 500) deep in the database driver."""

    regex = "[1-9][0-9]{0,17}"

    def to_python(self, value: str) -> int:
        return int(value)

    def to_url(self, value: int) -> str:
        return str(value)


register_converter(RowIdConverter, "row_id")
