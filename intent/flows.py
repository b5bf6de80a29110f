"""Flow-level intents: one sentence about a switch -> OpenFlow 1.3 entries in Ryu `ofctl_rest` JSON.

    translate_to_flows("In switch 1, forward TCP traffic on port 80 destined for 10.0.0.3 through port 2.")
    -> [{"dpid": 1, "table_id": 0, "priority": 100,
         "match": {"eth_type": 2048, "ip_proto": 6, "tcp_dst": 80, "ipv4_dst": "10.0.0.3"},
         "actions": [{"type": "OUTPUT", "port": 2}]}]

A deterministic reader, not a grammar of sentences: it finds the pieces a flow entry is made of (switches, addresses,
ports, protocol, verb, queue, DSCP, priority, timeouts) and decides the role of each from the few words before it
("from 10.0.0.1" is a source, "out of port 2" an output, "arriving on port 3" the in_port, "TCP ... on port 80" the
transport destination). Whatever it cannot place gives an IntentError with the question to ask, never a guess.

Conventions (the issue's contract): table 0; IPv4 implies eth_type 2048, ARP 2054, IPv6 34525; ip_proto 1/6/17; a drop
is empty actions at priority 300; SET_QUEUE before OUTPUT at 200; a specific forward at 100; a default rule ("traffic not
matching higher-priority rules", "everything else") at 50; an explicit priority wins; "/32" is the plain address.
Several switches ("on switches 1 and 2") give one entry each; "between A and B" gives both directions; "packets for A
out port 2, and packets for B out port 3" gives one entry per part, and so do two verbs on traffic of their own ("drop
ARP and forward the rest out port 1": a drop at 300, a default at 50) and several services ("drop telnet and ssh").
Keywords are read through their typos and abbreviations ("swtich 8", "prio 250": netgpt.intent.typos); a misspelt or
unsupported protocol is asked about, since leaving it out would widen the match.
"""
from __future__ import annotations

import ipaddress
import re

from netgpt.intent.errors import IntentError, ambiguous
from netgpt.intent.text import checked
from netgpt.intent.typos import corrected, near_protocol

ETH_IPV4, ETH_ARP, ETH_IPV6 = 2048, 2054, 34525
PRIO_DROP, PRIO_QUEUE, PRIO_FORWARD, PRIO_DEFAULT = 300, 200, 100, 50
MAX_SWITCH_PORT = 0xFFFFFF00  # OFPP_MAX: above it are the reserved ports, which are named (CONTROLLER, FLOOD, ...)

_SWITCHES = re.compile(r"\b(?:(?:in|on|at|for)\s+)?(?:the\s+)?(?:switch(?:es)?|nodes?|openflow|dpids?)\s*:?\s*"
                       r"(\d+(?:\s*(?:,\s*(?:and\s+)?|\band\s+|&\s*)\d+)*)")
_PRIORITY = re.compile(r"\b(?:with\s+(?:a\s+)?)?priority\s*(?:of\s*|=\s*|:\s*)?(-?\d+)")
_TIMEOUT = re.compile(r"\b(?:with\s+(?:an?\s+)?)?(idle|hard)[ -]timeout\s*(?:of\s*)?(\d+)\s*(?:s|secs?|seconds?)?\b")
_DEFAULT = re.compile(r"not matching (?:any )?higher[- ]priority|everything else|all (?:other|remaining) traffic|"
                      r"remaining traffic|the rest\b|default (?:rule|action|route)|by default|(?:doesn't|does not|"
                      r"don't|do not) match anything else")
_DROP = re.compile(r"\b(drop|drops|dropped|dropping|block|blocks|blocked|blocking|discard|discards|discarded|deny|"
                   r"denies|denied|reject|rejects|rejected)\b")
_FORWARD = re.compile(r"\b(forward|forwards|forwarded|forwarding|send|sends|sent|route|routes|routed|pass|output|go|"
                      r"goes|leave|leaves|exit|exits|flood|floods|flooded|enqueue|put|mark|normal)\b")
_IP = re.compile(r"\b(\d{1,3}(?:\.\d{1,3}){3})(?:/(\d{1,2}))?\b")
_MAC = re.compile(r"\b([0-9a-f]{2}(?::[0-9a-f]{2}){5})\b")
_PORT = re.compile(r"\bport\s*(\d+)\b")
_PROTO_PORT = re.compile(r"\b(tcp|udp)\s+(\d+)\b")
_QUEUE = re.compile(r"\bqueue\s*(\d+)\b")
_DSCP = re.compile(r"\bdscp\s*(?:to\s*|of\s*|value\s*|=\s*)?(\d+)\b")
_IN_PORT_BACK = re.compile(r"\bback out (?:of )?the (?:same )?port (?:it|they) came in on\b|\bout (?:of )?the ingress "
                           r"port\b")
_SPLIT = re.compile(r",?\s+and\s+(?=(?:those|packets|frames|traffic|from port)\b)")
# A second rule with a verb of its own: "block http to A, and block https to A", "drop arp; forward the rest to port 1".
# It is a rule of its own only when it names its own traffic ("... and send it out port 5" is the same traffic).
_SPLIT_VERB = re.compile(r"(?:,?\s+(?:and|then)|;)\s+(?:also\s+)?(?=(?:drop|block|discard|deny|reject|forward|send|"
                         r"route|flood|output|put|mark)\b)")
_SAME_TRAFFIC = re.compile(r"^\S+\s+(?:it|them|this|that|they)\b")  # "those from B" may be other traffic
_BOTH_WAYS = re.compile(r"\bbetween\b")

SERVICES = {"https": (6, 443), "http": (6, 80), "web": (6, 80), "ssh": (6, 22), "telnet": (6, 23), "dns": (17, 53),
            "ftp": (6, 21), "smtp": (6, 25), "ntp": (17, 123), "snmp": (17, 161), "bgp": (6, 179)}
# Protocols an operator may name that no single match field stands for here (DHCP is two ports, the others are not TCP
# or UDP ports): asked about, since ignoring the word would widen the match to all traffic.
UNSUPPORTED = r"\b(dhcp|quic|sctp|gre|ospf|vxlan|igmp|ipsec|lldp|mpls|rtp|sip|stp)\b"
RESERVED = [(r"\b(?:to|for) the controller\b|\bcontroller\b", "CONTROLLER"), (r"\bflood(?:s|ed)?\b", "FLOOD"),
            (r"\bnormal\b", "NORMAL"), (r"\bout (?:of )?all ports\b", "ALL")]

# The words the patterns above know (netgpt.intent.typos reads a misspelt one as the word: "swtich", "forwrad").
FLOW_WORDS = frozenset("""switch switches node nodes openflow dpid dpids priority forward forwards forwarded
forwarding send sends sending route routes routed routing pass output outputs leave leaves exit exits flood floods
flooded flooding enqueue normal drop drops dropped dropping block blocks blocked blocking discard discards discarded
deny denies denied reject rejects rejected port ports queue arriving arrives arrive entering enters enter coming
incoming ingress egress received source destination destined through towards toward controller traffic packets packet
frames frame timeout idle hard seconds between other remaining everything default matching higher address subnet
network host mark""".split())

# The role of "port N", read from the words just before it (the left context). Checked in this order.
_L4_SRC = re.compile(r"\b(?:source|src)\s*$")
_L4_DST = re.compile(r"\b(?:destination|dst|dest|destined (?:to|for))\s*$")
_OUT = re.compile(r"\b(?:out|out of|out of the|out the|through|via|output (?:it |them )?(?:on|to)|output on|"
                  r"exits? (?:through|via|on)|leaves? (?:on|via|through)|leave (?:on|via)|egress)\s*$")
_INGRESS = re.compile(r"\b(?:arriving|arrives|arrive|entering|enters|enter|coming in|comes in|come in|in|incoming|"
                      r"ingress|received)(?: on| at| via| through| from)?\s*$")
_PROTO_BEFORE = re.compile(r"\b(?:tcp|udp)\s*$")


def translate_to_flows(text: str) -> list[dict]:
    """ofctl_rest flow entries for one sentence; IntentError (structured) when it cannot be read with certainty."""
    t = re.sub(r"\b([a-z]+\d?)_([a-z]+)\b", r"\1 \2", checked(text))  # ofctl's field names: "in_port 1", "ipv4_dst"
    t, _ = corrected(t, FLOW_WORDS)
    _ask_about_protocol_typos(t)
    dpids, t = _take_switches(t)
    priority, t = _take_priority(t)
    timeouts, t = _take_timeouts(t)
    if not (_DROP.search(t) or _FORWARD.search(t) or _PORT.search(t) or _IP.search(t)):
        raise IntentError("not_understood", "no flow rule found: say what to forward or drop, on which switch")
    if not dpids:
        raise ambiguous("the sentence names no switch", "On which switch (e.g. 'on switch 1')?", field="dpid")
    segments = _segments(t)
    rules = []
    context_family = _family(t)
    for seg, drop in zip(segments, _drops(segments)):
        is_default = bool(_DEFAULT.search(seg))
        inherited = context_family if len(segments) > 1 and not is_default else None
        for part in _per_service(seg):
            for rule in _rules_for(part, drop, inherited):
                if (*rule, drop, is_default) not in rules:  # "web (http)" is one rule
                    rules.append((*rule, drop, is_default))
    flows = []
    for dpid in dpids:
        for match, actions, queued, drop, is_default in rules:
            prio = priority if priority is not None else (
                PRIO_DROP if drop else PRIO_QUEUE if queued else PRIO_DEFAULT if is_default else PRIO_FORWARD)
            flow = {"dpid": dpid, "table_id": 0, "priority": prio, "match": dict(match), "actions": actions}
            flow.update(timeouts)
            flows.append(flow)
    return flows


def _ask_about_protocol_typos(t: str) -> None:
    """A misspelt protocol is never guessed ("htpp": http or https?) nor ignored (that would widen the match)."""
    for w in re.findall(r"(?<![\w:.])[a-z]{3,}(?![\w:]|\.\w)", t):
        near = near_protocol(w, tuple(SERVICES))
        if near:
            raise ambiguous(f"'{w}' is not a protocol this reader knows", f"Did you mean {' or '.join(near)}?",
                            field="ip_proto", options=list(near))
    unsupported = re.search(UNSUPPORTED, t)
    if unsupported:
        raise ambiguous(f"{unsupported.group(1).upper()} is not one TCP/UDP port or IP protocol this reader can match",
                        "Which protocol and port (e.g. 'udp port 67')?", field="ip_proto")


def _per_service(seg: str) -> list[str]:
    """'drop telnet and ssh to A' is one rule per service: the part once per service named, without the others."""
    names = sorted((m.start(), m.group(0)) for m in re.finditer(r"\b(?:" + "|".join(SERVICES) + r")\b", seg))
    names = list(dict.fromkeys(n for _, n in names))
    if len(names) < 2:
        return [seg]
    return [re.sub(r"\b(?:" + "|".join(o for o in names if o != n) + r")\b", " ", seg) for n in names]


def _segments(t: str) -> list[str]:
    """The parts of a sentence that are rules of their own (one, most often)."""
    parts = []
    for part in _SPLIT.split(t):
        pieces = _SPLIT_VERB.split(part)
        merged = [pieces[0]]
        for piece in pieces[1:]:
            if _SAME_TRAFFIC.search(piece) or not (_selects(piece) and _selects(merged[-1])):
                merged[-1] += " and " + piece
            else:
                merged.append(piece)
        parts += merged
    return parts


def _selects(part: str) -> bool:
    """Whether a part names traffic of its own: an address, a protocol, an ingress port, or 'everything else'."""
    return bool(_IP.search(part) or _MAC.search(part) or _family(part) or _DEFAULT.search(part)
                or re.search(r"\b(?:arriving|entering|coming in|in|from) (?:on )?port \d", part))


def _drops(segments: list[str]) -> list[bool]:
    """Whether each part drops: by its own verb, else by the nearest part before it that has one, else after it
    ("packets from A, and from B, are dropped"). A part that names an output forwards."""
    own = [True if _DROP.search(s) else False if _FORWARD.search(s) or _outputs_named(s) else None for s in segments]
    out = []
    for i, verb in enumerate(own):
        if verb is None:
            before = [v for v in own[:i] if v is not None]
            after = [v for v in own[i + 1:] if v is not None]
            verb = before[-1] if before else after[0] if after else False
        out.append(verb)
    return out


def _outputs_named(seg: str) -> bool:
    return bool(re.search(r"\bout (?:of )?(?:the )?port\b|->", seg) or any(re.search(p, seg) for p, _ in RESERVED))


def _take_switches(t: str) -> tuple[list[int], str]:
    dpids: list[int] = []
    for m in _SWITCHES.finditer(t):
        for d in re.findall(r"\d+", m.group(1)):
            if int(d) < 1:
                raise IntentError("invalid", f"switch {d}: datapath ids start at 1", field="dpid")
            if int(d) not in dpids:
                dpids.append(int(d))
    return dpids, _SWITCHES.sub(" ", t)


def _take_priority(t: str) -> tuple[int | None, str]:
    m = _PRIORITY.search(t)
    if not m:
        return None, t
    prio = int(m.group(1))
    if not 0 <= prio <= 65535:
        raise IntentError("invalid", f"priority {prio} is outside 0..65535", field="priority")
    return prio, t[:m.start()] + " " + t[m.end():]


def _take_timeouts(t: str) -> tuple[dict, str]:
    out = {}
    for m in _TIMEOUT.finditer(t):
        seconds = int(m.group(2))
        if not 0 <= seconds <= 65535:
            raise IntentError("invalid", f"{m.group(1)} timeout {seconds} s is outside 0..65535", field="timeout")
        out[f"{m.group(1)}_timeout"] = seconds
    return out, _TIMEOUT.sub(" ", t)


def _family(t: str) -> dict:
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
    elif re.search(r"\bipv6\b", t):
        fam["eth_type"] = ETH_IPV6
    elif re.search(r"\b(ipv4|ip|dscp)\b", t):
        fam.setdefault("eth_type", ETH_IPV4)
    return fam


def _rules_for(seg: str, drop: bool, inherited: dict | None) -> list[tuple[dict, list, bool]]:
    """(match, actions, sent to a queue) for one part of the sentence; two for 'between A and B'."""
    fam = _family(seg) or dict(inherited or {})
    match: dict = {}
    if "eth_type" in fam:
        match["eth_type"] = fam["eth_type"]
    if "ip_proto" in fam:
        match["ip_proto"] = fam["ip_proto"]
    l4 = {6: "tcp", 17: "udp"}.get(fam.get("ip_proto"))

    roles: dict[int, str] = {}  # position of an address -> "src" | "dst" | "pair"
    pair: list[str] = []
    for m in _IP.finditer(seg):
        addr = _address(m.group(1), m.group(2))
        role = _role(seg[:m.start()], m.group(0))
        roles[m.end()] = role
        if role in ("pair", "and"):
            pair.append(addr)
            continue
        _set_once(match, f"ipv4_{role}", addr)
        match.setdefault("eth_type", ETH_IPV4)
    for m in _MAC.finditer(seg):
        role = _role(re.sub(r"\b(?:mac|address)\s*$", "", seg[:m.start()].rstrip()).rstrip(), m.group(0))
        if role not in ("src", "dst"):
            raise ambiguous(f"is {m.group(1)} the source or the destination?", "Is the MAC the source or the "
                            "destination?", field="eth", options=["source", "destination"])
        _set_once(match, f"eth_{role}", m.group(1))

    outputs: list = []
    l4_port: dict[str, int] = {}
    for m in _PROTO_PORT.finditer(seg):
        l4_port["dst"] = _l4_number(m.group(2))
    explicit_out = any(_OUT.search(seg[:m.start()]) for m in _PORT.finditer(seg))
    for m in _PORT.finditer(seg):
        left = seg[:m.start()].rstrip()
        role = _port_role(left, roles, l4, drop or explicit_out)
        n = int(m.group(1))
        if role == "out":
            if not 1 <= n <= MAX_SWITCH_PORT:
                raise IntentError("invalid", f"switch port {n} does not exist", field="port")
            outputs.append(n)
        elif role == "in_port":
            if not 1 <= n <= MAX_SWITCH_PORT:
                raise IntentError("invalid", f"switch port {n} does not exist", field="in_port")
            _set_once(match, "in_port", n)
        elif role in ("l4_src", "l4_dst"):
            l4_port[role[3:]] = _l4_number(m.group(1))
        else:
            raise ambiguous(f"'port {n}' is neither clearly a switch port nor a transport port",
                            f"Is port {n} the switch port to send to, the port it arrives on, or a TCP/UDP port?",
                            field="port", options=["output port", "in_port", "TCP/UDP port"])
    if "service_port" in fam and "dst" not in l4_port:
        l4_port["dst"] = fam["service_port"]
    for side, value in l4_port.items():
        if l4 is None:
            raise ambiguous(f"a transport port ({value}) without TCP or UDP", "TCP or UDP?", field="ip_proto",
                            options=["tcp", "udp"])
        _set_once(match, f"{l4}_{side}", value)

    if _IN_PORT_BACK.search(seg):
        outputs.append("IN_PORT")
    for pattern, name in RESERVED:
        if re.search(pattern, seg):
            outputs.append(name)
            break
    queue = _QUEUE.search(seg)
    dscp = _DSCP.search(seg)
    if drop and (outputs or queue or re.search(r"\b(forward|forwards|send|sends|route|output)\b", seg)):
        raise ambiguous("the sentence both drops and forwards the same traffic", "Drop it, or forward it?",
                        field="actions", options=["drop", "forward"])
    actions: list[dict] = []
    if not drop:
        if not outputs:
            raise ambiguous("the sentence says where nothing goes", "Out of which port (or to the controller)?",
                            field="actions")
        if dscp:
            value = int(dscp.group(1))
            if not 0 <= value <= 63:
                raise IntentError("invalid", f"DSCP {value} is outside 0..63", field="ip_dscp")
            match.setdefault("eth_type", ETH_IPV4)
            actions.append({"type": "SET_FIELD", "field": "ip_dscp", "value": value})
        if queue:
            actions.append({"type": "SET_QUEUE", "queue_id": int(queue.group(1))})
        actions += [{"type": "OUTPUT", "port": p} for p in outputs]
    if pair:
        if len(pair) != 2:
            raise ambiguous("'between' needs exactly two addresses", "Between which two addresses?", field="ipv4")
        a, b = pair
        return [({**match, "ipv4_src": a, "ipv4_dst": b, "eth_type": ETH_IPV4}, actions, bool(queue)),
                ({**match, "ipv4_src": b, "ipv4_dst": a, "eth_type": ETH_IPV4}, actions, bool(queue))]
    return [(match, actions, bool(queue))]


def _address(addr: str, prefix: str | None) -> str:
    try:
        net = ipaddress.IPv4Network(f"{addr}/{prefix or 32}", strict=True)
    except ValueError:
        raise IntentError("invalid", f"{addr}{'/' + prefix if prefix else ''} is not an IPv4 address or network",
                          field="ipv4") from None
    return str(net.network_address) if net.prefixlen == 32 else str(net)


def _role(left: str, what: str) -> str:
    """src | dst | pair (after 'between') | and (the second of a pair), from the words before an address."""
    left = re.sub(r"(?:\b(?:the|subnet|network|host|ip|ipv4|address|mac)\s*)+$", "", left.rstrip()).rstrip()
    if re.search(r"\b(?:from|source|src|sourced from)$", left):
        return "src"
    if re.search(r"\b(?:to|for|towards?|destined|destined (?:to|for)|destination|dst)$", left):
        return "dst"
    if re.search(r"\bbetween$", left):
        return "pair"
    if re.search(r"\band$", left) and _BOTH_WAYS.search(left):
        return "and"
    raise ambiguous(f"is {what} the source or the destination?", f"Is {what} the source or the destination?",
                    field="ipv4", options=["source", "destination"])


def _port_role(left: str, addr_roles: dict[int, str], l4: str | None, out_elsewhere: bool) -> str:
    if len(left) in addr_roles and addr_roles[len(left)] in ("src", "dst"):  # "from 10.0.0.4 port 6000"
        return "l4_src" if addr_roles[len(left)] == "src" else "l4_dst"
    if _L4_SRC.search(left):
        return "l4_src"
    if _L4_DST.search(left):
        return "l4_dst"
    if _OUT.search(left):
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


def _l4_number(s: str) -> int:
    n = int(s)
    if not 1 <= n <= 65535:
        raise IntentError("invalid", f"transport port {n} is outside 1..65535", field="l4_port")
    return n


def _set_once(match: dict, field: str, value) -> None:
    if field in match and match[field] != value:
        raise ambiguous(f"{field} is given twice ({match[field]} and {value})", f"Which {field}: {match[field]} or "
                        f"{value}?", field=field, options=[str(match[field]), str(value)])
    match[field] = value
