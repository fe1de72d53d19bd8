"""The shop file's `membership:` section: tiers, points rules, referral rewards, the return window. Pure.

Read by `config.shop_file` with the catalog loader's node helpers, so errors look like every other
section's: `shop.yaml:41: membership.tiers[1].spend: must be more than tiers[0]'s`.

    membership:
      page_username: blossomflorist      # for m.me/<username>?ref=<code> links (the Page id otherwise)
      period_months: 12                  # the membership period; tiers are recalculated at its end
      carry_over: true                   # after an upgrade, spend above the new threshold counts on
      return_window_days: 7              # points of an order stay pending this long after payment
      points_expire_months: 24           # or never
      birthday_points: 100
      redeem_cap_percent: 50             # points may pay at most half an order
      redeem_cap_points: 5000            # and at most this many points per order
      tiers:                             # 1 to 10, the first needs no spend
        - {key: member, name: Member, spend: 0, earn: {points: 1, per: 20}, redeem: {points: 10, value: 1}}
        - {key: gold, name: Gold, spend: 5000, earn: {points: 2, per: 20}, express_upgrade: 3000, bonus: 500}
      referral:
        new_member_points: 50
        daily_cap: 20                    # referrals one member may make per day
        levels:                          # 1 to 3: the direct referrer first
          - {signup: 100, first_purchase: 200, later_purchase: 5%}
"""

from __future__ import annotations

import math
from decimal import Decimal, InvalidOperation

import yaml

from config.catalog_file import CatalogFileError, _is_null, _line, _mapping_fields, _text
from crm_bridge.rules import (
    MAX_REFERRAL_LEVELS,
    MAX_TIERS,
    Program,
    ReferralLevel,
    ReferralRules,
    Reward,
    Tier,
)

MEMBERSHIP_FIELDS = (
    "page_username",
    "period_months",
    "carry_over",
    "return_window_days",
    "points_expire_months",
    "birthday_points",
    "redeem_cap_percent",
    "redeem_cap_points",
    "tiers",
    "referral",
)
TIER_FIELDS = ("key", "name", "spend", "earn", "redeem", "express_upgrade", "bonus")
EARN_FIELDS = ("points", "per")
REDEEM_FIELDS = ("points", "value")
REFERRAL_FIELDS = ("new_member_points", "daily_cap", "levels")
LEVEL_FIELDS = ("signup", "first_purchase", "later_purchase")
POINTS_MAX = 10_000_000
MONEY_MAX = Decimal("10000000000")
_TAG = "tag:yaml.org,2002:"
_CONSTRUCTOR = yaml.constructor.SafeConstructor()


class MembershipFileError(CatalogFileError):
    """A `membership:` section that cannot be used: file, line, field and problem."""


def parse_membership_node(node: yaml.Node, source: str, where: str = "membership") -> Program:
    fields = _fields(node, source, where, MEMBERSHIP_FIELDS)
    if "tiers" not in fields or _is_null(fields["tiers"]):
        raise MembershipFileError(source, "missing", _line(node), f"{where}.tiers")
    tiers = _tiers(fields["tiers"], source, f"{where}.tiers")
    expiry: int | None = None
    expire_node = _given(fields, "points_expire_months")
    if expire_node is not None:
        if isinstance(expire_node, yaml.ScalarNode) and str(expire_node.value).strip().lower() == "never":
            expiry = None
        else:
            expiry = _whole(expire_node, source, f"{where}.points_expire_months", 1, 600, "a number of months or never")
    username = None
    username_node = _given(fields, "page_username")
    if username_node is not None:
        username = _text(username_node, source, f"{where}.page_username").strip().lstrip("@")
        if not username or not all(c.isalnum() or c == "." for c in username) or len(username) > 100:
            raise MembershipFileError(
                source,
                "must be the Page's username (letters, digits, dots)",
                _line(username_node),
                f"{where}.page_username",
            )
    referral_node = _given(fields, "referral")
    return Program(
        tiers=tiers,
        period_months=_optional_whole(fields, "period_months", source, where, 1, 120, 12),
        carry_over=_bool(fields, "carry_over", source, where),
        return_window_days=_optional_whole(fields, "return_window_days", source, where, 0, 365, 7),
        expiry_months=expiry,
        birthday_points=_optional_whole(fields, "birthday_points", source, where, 0, POINTS_MAX, 0),
        redeem_cap_percent=_optional_money(fields, "redeem_cap_percent", source, where, Decimal(100), Decimal(100)),
        redeem_cap_points=_optional_whole(fields, "redeem_cap_points", source, where, 1, POINTS_MAX, None),
        referral=ReferralRules() if referral_node is None else _referral(referral_node, source, f"{where}.referral"),
        page_username=username,
    )


def _tiers(node: yaml.Node, source: str, where: str) -> tuple[Tier, ...]:
    if not isinstance(node, yaml.SequenceNode) or not 1 <= len(node.value) <= MAX_TIERS:
        raise MembershipFileError(source, f"must be a list of 1 to {MAX_TIERS} tiers", _line(node), where)
    tiers: list[Tier] = []
    for index, item in enumerate(node.value):
        at = f"{where}[{index}]"
        fields = _fields(item, source, at, TIER_FIELDS)
        key = _required_text(fields, "key", item, source, at, 40)
        if any(t.key == key for t in tiers):
            raise MembershipFileError(source, f"duplicate key {key!r}", _line(fields["key"]), f"{at}.key")
        spend_node = _given(fields, "spend")
        if spend_node is None:
            raise MembershipFileError(source, "missing", _line(item), f"{at}.spend")
        spend = _money(spend_node, source, f"{at}.spend", MONEY_MAX)
        if index == 0 and spend != 0:
            raise MembershipFileError(source, "the first tier must need a spend of 0", _line(spend_node), f"{at}.spend")
        if tiers and spend <= tiers[-1].threshold:
            raise MembershipFileError(
                source,
                f"must be more than {where}[{index - 1}]'s ({tiers[-1].threshold})",
                _line(spend_node),
                f"{at}.spend",
            )
        earn_points, earn_per = 1, Decimal(20)
        earn_node = _given(fields, "earn")
        if earn_node is not None:
            earn = _fields(earn_node, source, f"{at}.earn", EARN_FIELDS)
            earn_points = _optional_whole(earn, "points", source, f"{at}.earn", 0, POINTS_MAX, 1)
            earn_per = _optional_money(earn, "per", source, f"{at}.earn", MONEY_MAX, Decimal(20), positive=True)
        redeem_points, redeem_value = 10, Decimal(1)
        redeem_node = _given(fields, "redeem")
        if redeem_node is not None:
            redeem = _fields(redeem_node, source, f"{at}.redeem", REDEEM_FIELDS)
            redeem_points = _optional_whole(redeem, "points", source, f"{at}.redeem", 1, POINTS_MAX, 10)
            redeem_value = _optional_money(
                redeem, "value", source, f"{at}.redeem", MONEY_MAX, Decimal(1), positive=True
            )
        express = _express(_given(fields, "express_upgrade"), tiers, spend, source, where, index)
        tiers.append(
            Tier(
                key=key,
                name=_required_text(fields, "name", item, source, at, 80),
                threshold=spend,
                earn_points=earn_points,
                earn_per=earn_per,
                redeem_points=redeem_points,
                redeem_value=redeem_value,
                express_upgrade=express,
                bonus=_optional_whole(fields, "bonus", source, at, 0, POINTS_MAX, 0),
            )
        )
    return tuple(tiers)


def _express(
    node: yaml.Node | None, lower: list[Tier], spend: Decimal, source: str, where: str, index: int
) -> Decimal | None:
    """A tier's express upgrade amount, refused where it could never be the shortcut it claims to be.

    The same rules as `crm_bridge.rules.check_express_upgrades`, checked here to name the line and field.
    """
    if node is None:
        return None
    at = f"{where}[{index}].express_upgrade"
    if index == 0:
        raise MembershipFileError(source, "the first tier needs no express upgrade", _line(node), at)
    amount = _money(node, source, at, MONEY_MAX, positive=True)
    if amount > spend:
        raise MembershipFileError(source, f"must be at most the tier's spend ({spend})", _line(node), at)
    below = next(((i, t) for i, t in reversed(list(enumerate(lower))) if t.express_upgrade is not None), None)
    if below is not None and below[1].express_upgrade is not None and amount <= below[1].express_upgrade:
        raise MembershipFileError(
            source,
            f"must be more than {where}[{below[0]}]'s express_upgrade ({below[1].express_upgrade})",
            _line(node),
            at,
        )
    return amount


def _referral(node: yaml.Node, source: str, where: str) -> ReferralRules:
    fields = _fields(node, source, where, REFERRAL_FIELDS)
    levels: list[ReferralLevel] = []
    levels_node = _given(fields, "levels")
    if levels_node is not None:
        if not isinstance(levels_node, yaml.SequenceNode) or len(levels_node.value) > MAX_REFERRAL_LEVELS:
            raise MembershipFileError(
                source, f"must be a list of at most {MAX_REFERRAL_LEVELS} levels", _line(levels_node), f"{where}.levels"
            )
        for index, item in enumerate(levels_node.value):
            at = f"{where}.levels[{index}]"
            level = _fields(item, source, at, LEVEL_FIELDS)
            levels.append(
                ReferralLevel(
                    signup=_optional_whole(level, "signup", source, at, 0, POINTS_MAX, 0),
                    first_purchase=_reward(level, "first_purchase", source, at),
                    later_purchase=_reward(level, "later_purchase", source, at),
                )
            )
    return ReferralRules(
        new_member_points=_optional_whole(fields, "new_member_points", source, where, 0, POINTS_MAX, 0),
        levels=tuple(levels),
        daily_cap=_optional_whole(fields, "daily_cap", source, where, 1, 100_000, None),
    )


def _reward(fields: dict[str, yaml.Node], name: str, source: str, where: str) -> Reward:
    node = _given(fields, name)
    if node is None:
        return Reward()
    path = f"{where}.{name}"
    if isinstance(node, yaml.ScalarNode) and node.tag == _TAG + "str" and str(node.value).strip().endswith("%"):
        text = str(node.value).strip()[:-1].strip()
        try:
            percent = Decimal(text)
        except InvalidOperation:
            percent = Decimal(-1)
        if not percent.is_finite() or not 0 < percent <= 100:
            raise MembershipFileError(source, "a percentage must be above 0% and at most 100%", _line(node), path)
        return Reward(percent=percent)
    return Reward(points=_whole(node, source, path, 0, POINTS_MAX, "points (a whole number) or a percentage like 5%"))


# --- node helpers -------------------------------------------------------------------------------------


def _fields(node: yaml.Node, source: str, where: str, allowed: tuple[str, ...]) -> dict[str, yaml.Node]:
    if not isinstance(node, yaml.MappingNode):
        raise MembershipFileError(source, f"must be a mapping with {', '.join(allowed)}", _line(node), where)
    fields = _mapping_fields(node, source, where)
    for key, (key_node, _) in fields.items():
        if key not in allowed:
            raise MembershipFileError(
                source, f"unknown field (expected {', '.join(allowed)})", _line(key_node), f"{where}.{key}"
            )
    return {key: value for key, (_, value) in fields.items()}


def _given(fields: dict[str, yaml.Node], name: str) -> yaml.Node | None:
    node = fields.get(name)
    return None if node is None or _is_null(node) else node


def _required_text(
    fields: dict[str, yaml.Node], name: str, parent: yaml.Node, source: str, where: str, limit: int
) -> str:
    node = _given(fields, name)
    if node is None:
        raise MembershipFileError(source, "missing", _line(parent), f"{where}.{name}")
    text = _text(node, source, f"{where}.{name}").strip()
    if not text or len(text) > limit:
        raise MembershipFileError(source, f"must be 1 to {limit} characters", _line(node), f"{where}.{name}")
    return text


def _whole(node: yaml.Node, source: str, where: str, low: int, high: int, what: str | None = None) -> int:
    message = f"must be {what}" if what else f"must be a whole number from {low} to {high}"
    if not isinstance(node, yaml.ScalarNode) or node.tag != _TAG + "int":
        raise MembershipFileError(source, message, _line(node), where)
    value = int(_CONSTRUCTOR.construct_yaml_int(node))
    if not low <= value <= high:
        raise MembershipFileError(source, f"must be a whole number from {low} to {high}", _line(node), where)
    return value


def _optional_whole(
    fields: dict[str, yaml.Node], name: str, source: str, where: str, low: int, high: int, default: int | None
) -> int:
    node = _given(fields, name)
    return default if node is None else _whole(node, source, f"{where}.{name}", low, high)  # type: ignore[return-value]


def _money(node: yaml.Node, source: str, where: str, high: Decimal, *, positive: bool = False) -> Decimal:
    message = "must be a number above 0" if positive else "must be a number >= 0"
    if not isinstance(node, yaml.ScalarNode) or node.tag not in (_TAG + "int", _TAG + "float"):
        raise MembershipFileError(source, message, _line(node), where)
    if node.tag == _TAG + "float" and not math.isfinite(_CONSTRUCTOR.construct_yaml_float(node)):
        raise MembershipFileError(source, message, _line(node), where)
    try:
        value = Decimal(str(node.value).replace("_", ""))  # from the text: 12.30 stays exactly 12.30
    except InvalidOperation:
        raise MembershipFileError(source, message, _line(node), where) from None
    if value < 0 or (positive and value == 0):
        raise MembershipFileError(source, message, _line(node), where)
    if value > high or value != value.quantize(Decimal("0.01")):
        raise MembershipFileError(source, f"must be at most {high} with at most 2 decimals", _line(node), where)
    return value


def _optional_money(
    fields: dict[str, yaml.Node],
    name: str,
    source: str,
    where: str,
    high: Decimal,
    default: Decimal,
    *,
    positive: bool = False,
) -> Decimal:
    node = _given(fields, name)
    return default if node is None else _money(node, source, f"{where}.{name}", high, positive=positive)


def _bool(fields: dict[str, yaml.Node], name: str, source: str, where: str) -> bool:
    node = _given(fields, name)
    if node is None:
        return False
    if not isinstance(node, yaml.ScalarNode) or node.tag != _TAG + "bool":
        raise MembershipFileError(source, "must be true or false", _line(node), f"{where}.{name}")
    return bool(_CONSTRUCTOR.construct_yaml_bool(node))
