"""Conflicts between two OpenFlow flow entries of one switch and table, in Ryu `ofctl_rest` JSON
({"dpid", "table_id", "priority", "match", "actions"}), with the classic taxonomy (Al-Shaer & Hamed for firewall rules;
Pisharody et al. for the cross-layer case in SDN):

    redundancy      one match covers the other and the actions are the same: one of the two is unnecessary
    shadowing       the higher-priority entry covers the lower one and acts differently: the lower one never matches
    generalization  the lower-priority entry covers the higher one and acts differently: it is the general case of it
    correlation     the matches overlap, neither covers the other (or both have the same priority, so which applies
                    is undefined), and the actions differ
    imbrication     the same priority, different actions, and one entry selects only by layer 2 or port identity (MAC
                    addresses, or in_port without eth_type) while the other selects by IP or transport fields: whether
                    they overlap depends on which hosts sit behind those ports and addresses
    None            the match spaces are disjoint, the entries are on different switches or tables, or they overlap
                    only partly with the same actions (nothing is lost either way)

How matches are compared: a field absent from a match is a wildcard. OpenFlow prerequisites are made explicit first
(tcp_dst implies ip_proto 6 and eth_type 2048, ipv4_dst implies eth_type 2048, ...). IPv4/IPv6 addresses may carry
a prefix ("10.0.0.0/24") or a dotted mask ("10.0.0.0/255.255.255.0"); MACs and metadata a mask after '/'; every other
field is an exact value. Per field, two constraints are equal, one inside the other, overlapping or disjoint; a match
covers another when every field of it covers the other's.
"""
from __future__ import annotations

import ipaddress
from typing import Optional

TYPES = ("redundancy", "shadowing", "generalization", "correlation", "imbrication")

ETH_IPV4, ETH_ARP, ETH_IPV6 = 2048, 2054, 34525
IP_FIELDS = {"ipv4_src", "ipv4_dst", "ipv6_src", "ipv6_dst", "ip_proto", "ip_dscp", "ip_ecn", "tcp_src", "tcp_dst",
             "udp_src", "udp_dst", "sctp_src", "sctp_dst", "icmpv4_type", "icmpv4_code", "icmpv6_type", "icmpv6_code"}
LAYER2_FIELDS = {"eth_src", "eth_dst", "in_port", "in_phy_port", "vlan_vid", "vlan_pcp"}
_PROTO = {"tcp": 6, "udp": 17, "sctp": 132, "icmpv4": 1, "icmpv6": 58}
_FAMILY = {"ipv4": ETH_IPV4, "ipv6": ETH_IPV6, "arp": ETH_ARP}

# A field's constraint as a set of values: (value, mask) over `bits` bits; an exact value has the all-ones mask.
Constraint = tuple[int, int, int]


def _constraint(field: str, value) -> Constraint:
    text = str(value).strip()
    if field.startswith(("ipv4_", "ipv6_", "arp_spa", "arp_tpa")):
        addr, _, mask = text.partition("/")
        ip = ipaddress.ip_address(addr)
        bits = ip.max_prefixlen
        if not mask:
            m = (1 << bits) - 1
        elif mask.isdigit():
            m = ((1 << bits) - 1) ^ ((1 << (bits - int(mask))) - 1)
        else:
            m = int(ipaddress.ip_address(mask))
        return int(ip) & m, m, bits
    if field in ("eth_src", "eth_dst", "arp_sha", "arp_tha"):
        addr, _, mask = text.partition("/")
        m = int(mask.replace(":", ""), 16) if mask else (1 << 48) - 1
        return int(addr.replace(":", ""), 16) & m, m, 48
    if "/" in text:  # metadata, vlan_vid and other maskable integers
        v, m = (int(x, 0) for x in text.split("/"))
        return v & m, m, 64
    try:
        return int(text, 0), (1 << 64) - 1, 64
    except ValueError:  # a symbolic value (in_port "LOCAL", "CONTROLLER"): equal only to itself
        return int.from_bytes(text.encode()[:8].ljust(8, b"\0"), "big") | (1 << 63), (1 << 64) - 1, 64


def _normalise(match: dict) -> dict[str, Constraint]:
    """Explicit prerequisites (the address family first, then IPv4 as the default family of IP fields), then every
    field as a value/mask constraint."""
    m = dict(match or {})
    for field in list(m):
        head = field.split("_")[0]
        if head in _FAMILY:
            m.setdefault("eth_type", _FAMILY[head])
        if head in _PROTO:
            m.setdefault("ip_proto", _PROTO[head])
        if head == "icmpv6":
            m.setdefault("eth_type", ETH_IPV6)
    if any(f in m for f in ("ip_proto", "ip_dscp", "ip_ecn")):
        m.setdefault("eth_type", ETH_IPV4)
    return {field: _constraint(field, value) for field, value in m.items()}


def _relation(a: Constraint, b: Constraint) -> str:
    """'equal', 'a_in_b', 'b_in_a', 'overlap' or 'disjoint' for two value/mask sets over the same bits."""
    (va, ma, _), (vb, mb, _) = a, b
    common = ma & mb
    if (va & common) != (vb & common):
        return "disjoint"
    if ma == mb:
        return "equal"
    if ma & mb == mb:  # a fixes every bit b fixes, and more: a is inside b
        return "a_in_b"
    if ma & mb == ma:
        return "b_in_a"
    return "overlap"


def match_relation(a: dict, b: dict) -> str:
    """How match `a` relates to match `b`: 'equal', 'a_in_b' (b covers a), 'b_in_a', 'overlap' or 'disjoint'."""
    na, nb = _normalise(a), _normalise(b)
    a_in_b = b_in_a = True
    for field in set(na) | set(nb):
        if field not in nb:  # b is a wildcard here: a is inside b on this field
            b_in_a = False
            continue
        if field not in na:
            a_in_b = False
            continue
        rel = _relation(na[field], nb[field])
        if rel == "disjoint":
            return "disjoint"
        if rel == "overlap":
            a_in_b = b_in_a = False
        elif rel == "a_in_b":
            b_in_a = False
        elif rel == "b_in_a":
            a_in_b = False
    if a_in_b and b_in_a:
        return "equal"
    return "a_in_b" if a_in_b else "b_in_a" if b_in_a else "overlap"


def _actions(entry: dict) -> list:
    return [tuple(sorted((k, str(v)) for k, v in action.items())) for action in entry.get("actions") or []]


def _selects_by_layer2_only(match: dict) -> bool:
    fields = set(match or {})
    return bool(fields) and fields <= LAYER2_FIELDS and "eth_type" not in fields


def _selects_by_ip(match: dict) -> bool:
    return bool(set(match or {}) & IP_FIELDS)


def classify_conflict(installed: dict, new: dict) -> Optional[str]:
    """The conflict type between an installed flow entry and a new one (module docstring), or None."""
    if (int(installed.get("dpid", 0)), int(installed.get("table_id", 0))) != \
            (int(new.get("dpid", 0)), int(new.get("table_id", 0))):
        return None
    p_old, p_new = int(installed.get("priority", 0)), int(new.get("priority", 0))
    same_actions = _actions(installed) == _actions(new)
    m_old, m_new = installed.get("match") or {}, new.get("match") or {}
    rel = match_relation(m_new, m_old)  # how the new match relates to the installed one
    if rel == "disjoint":
        return None
    if p_old == p_new and not same_actions and (
            (_selects_by_layer2_only(m_old) and _selects_by_ip(m_new))
            or (_selects_by_layer2_only(m_new) and _selects_by_ip(m_old))):
        return "imbrication"
    if same_actions:
        return "redundancy" if rel != "overlap" else None
    if rel == "overlap" or p_new == p_old:
        return "correlation"
    new_covers_old = rel in ("equal", "b_in_a")
    high_covers_low = new_covers_old if p_new > p_old else rel in ("equal", "a_in_b")
    return "shadowing" if high_covers_low else "generalization"
