"""The fields of a flow entry, for netgpt.intent.flows: how a flow sentence is normalised before it is read, and how the
match fields (protocol family, addresses and their roles, the role of "port N") are read from it.

    normalised("switch three: icmp to 10.0.0.3 -> port 1") -> "switch 3: icmp to 10.0.0.3 out port 1"

Terse notation is rewritten into the words the reader knows: a number word after a switch/port/queue keyword is the
number ("port six"), an arrow is where the traffic goes ("-> port 1", "-> out 3", "-> queue 1, port 2", "-> drop",
"-> controller"), an arrow between two addresses a source and a destination ("mac A -> B"). Addresses are IPv4 (ipv4_src/ipv4_dst, eth_type 2048), IPv6 (ipv6_src/ipv6_dst, eth_type 34525),
MAC (eth_src/eth_dst) or, in ARP, the sender and target protocol addresses (arp_spa/arp_tpa: "ARP whose target IP is
A", "ARP from A"); the words before an address give its role, and an address without one is asked about.
"""
from __future__ import annotations

import ipaddress
import re

from netgpt.intent.errors import IntentError, ambiguous
from netgpt.intent.text import NUMBER_WORDS

ETH_IPV4, ETH_ARP, ETH_IPV6 = 2048, 2054, 34525
MAX_SWITCH_PORT = 0xFFFFFF00  # OFPP_MAX: above it are the reserved ports, which are named (CONTROLLER, FLOOD, ...)

SERVICES = {"https": (6, 443), "http": (6, 80), "web": (6, 80), "ssh": (6, 22), "telnet": (6, 23), "dns": (17, 53),
            "ftp": (6, 21), "smtp": (6, 25), "ntp": (17, 123), "snmp": (17, 161), "bgp": (6, 179)}

IP = re.compile(r"\b(\d{1,3}(?:\.\d{1,3}){3})(?:/(\d{1,2}))?\b")
# An IPv6 candidate: hex groups with two colons or more; ipaddress decides (a MAC or "10:30" is no IPv6 address).
IP6 = re.compile(r"(?<![\w:.])((?:[0-9a-f]{0,4}:){2,7}[0-9a-f]{0,4})(?:/(\d{1,3}))?(?![\w:]|\.\w)")
# What looks like an IPv6 address, checked when it has "::" or 8 groups ("2001:db8::zz" is refused, not ignored)
_IP6_LIKE = re.compile(r"(?<![\w:.])([0-9a-z]{0,4}(?::[0-9a-z]{0,4}){2,7})(?![\w:]|\.\w)")
MAC = re.compile(r"\b([0-9a-f]{2}(?::[0-9a-f]{2}){5})\b")

# Number words after the keywords that take a number ("switch three", "port six", "queue two", "switches one and two",
# "port forty-two"): one to ninety-nine.
_NUMBERS = {w: n for w, n in NUMBER_WORDS.items() if len(w) > 2}
_TENS = {"twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90}
_UNITS = "|".join(w for w, n in _NUMBERS.items() if 1 <= n <= 9)
_NUMBER_AFTER_KEYWORD = re.compile(
    r"(\b(?:switch(?:es)?|nodes?|openflow|dpids?|ports?|queues?)\s+(?:\d+\s*(?:,\s*(?:and\s+)?|and\s+|&\s*|or\s+))*)"
    rf"(?:({'|'.join(_TENS)})(?:[- ]({_UNITS}))?|(" + "|".join(sorted(_NUMBERS, key=len, reverse=True)) + r"))\b")
# A number in words this reader does not read ("port two hundred"): asked, never left out.
_BIG_NUMBER = re.compile(r"\b(?:switch(?:es)?|nodes?|openflow|dpids?|ports?|queues?)\s+\d*\s*(hundred|thousand)\b")
_FIELD_EQUALS = re.compile(r"\b(port|dst|src|destination|source|queue|priority|out|output|dpid|switch|node|openflow|"
                           r"timeout|dscp|tcp|udp)\s*[=:]\s*(?=\d)")
_ARROW = r"\s*(?:->|=>|\u2192)\s*"
# An address on both sides of an arrow is a source and a destination: "mac A -> B", "10.0.0.1 -> 10.0.0.2/32"
_ADDRESS = (r"\d{1,3}(?:\.\d{1,3}){3}(?:/\d{1,2})?|[0-9a-f]{2}(?::[0-9a-f]{2}){5}|"
            r"[0-9a-f]{0,4}(?::[0-9a-f]{0,4}){2,7}(?:/\d{1,3})?")
_ARROWS = [  # (pattern, replacement), in this order
    (_ARROW + r"(?:the\s+)?(?:drop|block|discard|deny)\b", " drop"),
    (_ARROW + r"(?:to\s+)?(?:the\s+)?controller\b", " to the controller"),
    (_ARROW + r"flood\b", " flood"),
    (_ARROW + r"(?:set\s+)?queue\s*(\d+)\s*(?:,|and|then|;)?\s*(?:out(?:put)?\s+)?(?:(?:on|of|via)\s+)?"
     r"(?:port\s*)?(\d+)\b", r" queue \1 out port \2"),
    (_ARROW + r"(?:out(?:put)?\s*)?(?:(?:of|to|on)\s+)?(?:the\s+)?(?:port\s*)?(\d+)\b", r" out port \1"),
]


def normalised(t: str) -> str:
    """Number words after their keyword as digits, arrows as words, "out 3" as "out port 3"."""
    before = None
    while before != t:
        before = t
        t = _NUMBER_AFTER_KEYWORD.sub(_digits, t)
    if _BIG_NUMBER.search(t):
        raise ambiguous(f"'{_BIG_NUMBER.search(t).group(0)}': a number in words this reader does not read",
                        "Please write the number in digits.", field="port")
    t = _FIELD_EQUALS.sub(r"\1 ", t)  # "in port=3", "out:4", "queue = 2"
    t = re.sub(rf"(?<![\w:.])({_ADDRESS}){_ARROW}({_ADDRESS})(?![\w:]|\.\w)", r"from \1 to \2", t)  # "A -> B"
    for pattern, replacement in _ARROWS:
        t = re.sub(pattern, replacement, t)
    return re.sub(r"\bout\s+(\d+)\b(?![:/]|\.\d)", r"out port \1", t)


def _digits(m: re.Match) -> str:
    if m.group(4):
        return m.group(1) + str(_NUMBERS[m.group(4)])
    return m.group(1) + str(_TENS[m.group(2)] + (_NUMBERS[m.group(3)] if m.group(3) else 0))


def family(t: str) -> dict:
    """eth_type / ip_proto / a service's well-known port, from the protocol words."""
    fam: dict = {}
    for name, (proto, port) in SERVICES.items():
        if re.search(rf"\b{name}\b", t):
            fam.update(eth_type=ETH_IPV4, ip_proto=proto, service_port=port)
            break
    if re.search(r"\btcp\b", t):
        fam.update(eth_type=ETH_IPV4, ip_proto=6)
    elif re.search(r"\b(udp|datagrams?)\b", t):
        fam.update(eth_type=ETH_IPV4, ip_proto=17)
    elif re.search(r"\bicmp\b", t):
        fam.update(eth_type=ETH_IPV4, ip_proto=1)
    if re.search(r"\barp\b", t):
        fam["eth_type"] = ETH_ARP
    elif re.search(r"\bipv6\b", t) or ipv6_addresses(t):
        if re.search(r"\bipv4\b", t):
            raise ambiguous("the sentence says both IPv4 and IPv6", "IPv4 or IPv6?", field="eth_type",
                            options=["ipv4", "ipv6"])
        fam["eth_type"] = ETH_IPV6
    elif re.search(r"\b(ipv4|ip|dscp)\b", t):
        fam.setdefault("eth_type", ETH_IPV4)
    return fam


def ipv6_addresses(t: str) -> list[re.Match]:
    """The IPv6 addresses in t; IntentError(invalid) for one that only looks like an address ("2001:db8::zz")."""
    for m in _IP6_LIKE.finditer(t):
        if ("::" in m.group(1) or m.group(1).count(":") == 7) and not _is_ipv6(m.group(1)):
            raise IntentError("invalid", f"{m.group(1)} is not an IPv6 address", field="ipv6")
    return [m for m in IP6.finditer(t) if _is_ipv6(m.group(1))]


def _is_ipv6(s: str) -> bool:
    try:
        ipaddress.IPv6Address(s)
    except ValueError:
        return False
    return True


def read_addresses(seg: str, match: dict) -> tuple[dict[int, str], list[tuple[str, str]]]:
    """Sets the address fields of `match` from `seg`; returns the role of each address by its end position (for
    "from 10.0.0.4 port 6000") and the addresses after "between" as (version, address) pairs."""
    roles: dict[int, str] = {}
    pair: list[tuple[str, str]] = []
    arp = match.get("eth_type") == ETH_ARP
    found = [(m, "ipv4", address(m.group(1), m.group(2))) for m in IP.finditer(seg)]
    found += [(m, "ipv6", address6(m.group(1), m.group(2))) for m in ipv6_addresses(seg)]
    if {v for _, v, _ in found} == {"ipv4", "ipv6"}:
        raise ambiguous("the sentence mixes IPv4 and IPv6 addresses", "IPv4 or IPv6?", field="eth_type",
                        options=["ipv4", "ipv6"])
    for m, version, addr in sorted(found, key=lambda x: x[0].start()):
        left = seg[:m.start()]
        role = _arp_role(left) if arp else None
        role = role or role_of(left, m.group(0))
        roles[m.end()] = role
        if role in ("pair", "and"):
            pair.append((version, addr))
            continue
        if arp and version == "ipv4":
            set_once(match, "arp_spa" if role == "src" else "arp_tpa", addr)
            continue
        if arp:
            raise ambiguous(f"ARP carries no IPv6 address ({addr})", "Which IPv4 address?", field="arp")
        set_once(match, f"{version}_{role}", addr)
        match["eth_type"] = ETH_IPV6 if version == "ipv6" else match.get("eth_type", ETH_IPV4)
        if match["eth_type"] != (ETH_IPV6 if version == "ipv6" else ETH_IPV4):
            raise ambiguous(f"{addr} is an {version} address in {'IPv4' if version == 'ipv6' else 'IPv6'} traffic",
                            "IPv4 or IPv6?", field="eth_type", options=["ipv4", "ipv6"])
    for m in MAC.finditer(seg):
        role = role_of(re.sub(r"\b(?:mac|address)\s*$", "", seg[:m.start()].rstrip()).rstrip(), m.group(0))
        if role not in ("src", "dst"):
            raise ambiguous(f"is {m.group(1)} the source or the destination?", "Is the MAC the source or the "
                            "destination?", field="eth", options=["source", "destination"])
        set_once(match, f"eth_{role}", m.group(1))
    return roles, pair


def _arp_role(left: str) -> str | None:
    """In ARP: 'sender (protocol) address A' is the sender, 'target IP (is) A' the target."""
    m = re.search(r"\b(sender|spa|target|tpa)(?:'s)?(?:\s+(?:protocol|ip|ipv4|address|addr))*(?:\s+(?:is|of|=|:))?"
                  r"\s*:?\s*$", left)
    return None if not m else "src" if m.group(1) in ("sender", "spa") else "dst"


def address(addr: str, prefix: str | None) -> str:
    try:
        net = ipaddress.IPv4Network(f"{addr}/{prefix or 32}", strict=True)
    except ValueError:
        raise IntentError("invalid", f"{addr}{'/' + prefix if prefix else ''} is not an IPv4 address or network",
                          field="ipv4") from None
    return str(net.network_address) if net.prefixlen == 32 else str(net)


def address6(addr: str, prefix: str | None) -> str:
    try:
        net = ipaddress.IPv6Network(f"{addr}/{prefix or 128}", strict=True)
    except ValueError:
        raise IntentError("invalid", f"{addr}/{prefix} is not an IPv6 network", field="ipv6") from None
    return str(net.network_address) if net.prefixlen == 128 else str(net)


def role_of(left: str, what: str) -> str:
    """src | dst | pair (after 'between') | and (the second of a pair), from the words before an address."""
    left = re.sub(r"(?:\b(?:the|subnet|network|host|ip|ipv4|ipv6|address|mac|is)\s*)+$", "", left.rstrip()).rstrip()
    if re.search(r"\b(?:from|source|src|sourced from)$", left):
        return "src"
    if re.search(r"\b(?:to|for|towards?|destined|destined (?:to|for)|destination|dst)$", left):
        return "dst"
    if re.search(r"\bbetween$", left):
        return "pair"
    if re.search(r"\band$", left) and re.search(r"\bbetween\b", left):
        return "and"
    raise ambiguous(f"is {what} the source or the destination?", f"Is {what} the source or the destination?",
                    field="ipv4", options=["source", "destination"])


# The role of "port N", read from the words just before it (the left context). Checked in this order.
_L4_SRC = re.compile(r"\b(?:source|src)\s*$")
_L4_DST = re.compile(r"\b(?:destination|dst|dest|destined (?:to|for))\s*$")
OUT = re.compile(r"\b(?:out|out of|out of the|out the|through|via|output (?:it |them )?(?:on|to)|output on|"
                 r"exits? (?:through|via|on)|leaves? (?:on|via|through)|leave (?:on|via)|egress|"
                 r"queue\s*\d+\s*,?\s*(?:on|at|of)?)\s*$")
_INGRESS = re.compile(r"\b(?:arriving|arrives|arrive|entering|enters|enter|coming in|comes in|come in|in|incoming|"
                      r"ingress|received)(?: on| at| via| through| from)?\s*$")
_PROTO_BEFORE = re.compile(r"\b(?:tcp|udp)\s*$")
# A transport port written without the word "port": "tcp dst 445", "udp src 53", "tcp_dst=8080", "tcp 80".
L4_TERSE = re.compile(r"\b(?:tcp|udp)\s+(?:(src|source|dst|destination)\s*[=:]?\s*)?(\d+)(?![\d:/]|\.\d)")
# "dst 53" alone: TCP or UDP? (asked, never left unread)
L4_BARE = re.compile(r"(?<!tcp )(?<!udp )\b(src|source|dst|destination)\s*[=:]?\s*(\d+)(?![\d:/]|\.\d)")


def port_role(left: str, addr_roles: dict[int, str], l4: str | None, out_elsewhere: bool) -> str:
    if len(left) in addr_roles and addr_roles[len(left)] in ("src", "dst"):  # "from 10.0.0.4 port 6000"
        return "l4_src" if addr_roles[len(left)] == "src" else "l4_dst"
    if _L4_SRC.search(left):
        return "l4_src"
    if _L4_DST.search(left):
        return "l4_dst"
    if OUT.search(left):
        return "out"
    if _PROTO_BEFORE.search(left):
        return "l4_dst"
    if _INGRESS.search(left) or re.search(r"\bfrom\s*$", left):
        return "in_port"
    if re.search(r"\bto\s*$", left):
        return "l4_dst" if out_elsewhere else "out"
    if re.search(r"\bon\s*$", left):
        return "l4_dst" if l4 else "in_port"
    return "unknown"


def l4_number(s: str) -> int:
    n = int(s)
    if not 1 <= n <= 65535:
        raise IntentError("invalid", f"transport port {n} is outside 1..65535", field="l4_port")
    return n


def set_once(match: dict, field: str, value) -> None:
    if field in match and match[field] != value:
        raise ambiguous(f"{field} is given twice ({match[field]} and {value})", f"Which {field}: {match[field]} or "
                        f"{value}?", field=field, options=[str(match[field]), str(value)])
    match[field] = value
