"""Member prices, in integer pence. Never floats."""

from dataclasses import dataclass

# Stripe's minimum charge in GBP.
MINIMUM_CHARGE_PENCE = 30


@dataclass(frozen=True)
class Discount:
    percent: int | None = None
    fixed_pence: int | None = None

    def __post_init__(self) -> None:
        if self.percent is not None and self.fixed_pence is not None:
            raise ValueError("A discount is either a percentage or a fixed amount, not both.")
        if self.percent is not None and not 0 <= self.percent <= 100:
            raise ValueError("A percentage discount is between 0 and 100.")
        if self.fixed_pence is not None and self.fixed_pence < 0:
            raise ValueError("A fixed discount cannot be negative.")

    def amount_off(self, public_price_pence: int) -> int:
        if self.fixed_pence is not None:
            return min(self.fixed_pence, public_price_pence)
        if self.percent is not None:
            # Round the discount half up to the nearest penny, in the member's favour.
            return min((public_price_pence * self.percent + 50) // 100, public_price_pence)
        return 0

    def describe(self) -> str:
        if self.fixed_pence:
            return f"{format_pence(self.fixed_pence)} member discount"
        if self.percent:
            return f"{self.percent}% member discount"
        return "no member discount"


def member_price_pence(public_price_pence: int, discount: Discount) -> int:
    if public_price_pence < 0:
        raise ValueError("A price cannot be negative.")
    return public_price_pence - discount.amount_off(public_price_pence)


def format_pence(pence: int) -> str:
    """£12.50, or £12 for whole pounds."""
    pounds, rest = divmod(abs(pence), 100)
    sign = "-" if pence < 0 else ""
    return f"{sign}£{pounds:,}" if rest == 0 else f"{sign}£{pounds:,}.{rest:02d}"
