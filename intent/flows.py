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
unsupported protocol is asked about, since leaving it out would widen the match. Terse notation ("switch three",
"icmp to A -> port 1", "tcp dst 445", "-> queue 1, port 2") is rewritten first, and the match fields (IPv4, IPv6, MAC,
ARP sender/target, the role of each "port N") are read by netgpt.intent.flow_fields. Two rules joined by "and" that each
name their own traffic and output ("HTTP to A out port 2 and HTTP to B out port 3") are two entries; "drop tcp and udp"
an entry per protocol. A switch per clause ("on switch 3, flood ARP; on switch 4, send it to the controller", "out port
2 on switch 1 and out port 3 on switch 2") gives each clause's rules to its own switch (netgpt.intent.flow_clauses; a
clause without traffic of its own is about the traffic of the clause before it), and is asked where the words do not
say which goes where. Reserved ports are output targets ("back out its ingress port", "to the reserved port ALL").
"""
from __future__ import annotations

import re

from netgpt.intent.errors import IntentError, ambiguous
from netgpt.intent.flow_clauses import SWITCHES, clauses
from netgpt.intent.flow_fields import (ETH_ARP, ETH_IPV4, ETH_IPV6, IP, L4_BARE, L4_TERSE, MAC, MAX_SWITCH_PORT, OUT, SERVICES,
                                       family, ipv6_addresses, l4_number, normalised, port_role, read_addresses,
                                       set_once)
from netgpt.intent.text import checked
from netgpt.intent.typos import corrected, near_protocol

PRIO_DROP, PRIO_QUEUE, PRIO_FORWARD, PRIO_DEFAULT = 300, 200, 100, 50

_PRIORITY = re.compile(r"\b(?:with\s+(?:a\s+)?)?priority\s*(?:of\s*|=\s*|:\s*)?(-?\d+)")
_TIMEOUT = re.compile(r"\b(?:with\s+(?:an?\s+)?)?(idle|hard)[ -]timeout\s*(?:of\s*)?(\d+)\s*(?:s|secs?|seconds?)?\b")
# A default rule: "traffic not matching (any) higher-priority rule(s)", "that doesn't match any other rule", "unmatched
# traffic", "everything else", "the rest", "by default".
_DEFAULT = re.compile(r"(?:\bnot|n't|\bno|\bfails? to|\bfailing to) match(?:es|ing)? (?:any(?:thing)? |an |the |a )?"
                      r"(?:higher[- ]priority|other|else|earlier|previous|more specific)|"
                      r"\bmatch(?:es|ing)? no (?:other|higher|earlier)|"
                      r"\bnot matched by|\bunmatched\b|"
                      r"everything else|all (?:other|remaining) traffic|remaining traffic|any other traffic|the rest\b|"
                      r"default (?:rule|action|route)|by default|(?:doesn't|does not|don't|do not) match anything else")
_DROP = re.compile(r"\b(drop|drops|dropped|dropping|block|blocks|blocked|blocking|discard|discards|discarded|deny|"
                   r"denies|denied|reject|rejects|rejected)\b")
_FORWARD = re.compile(r"\b(forward|forwards|forwarded|forwarding|send|sends|sent|route|routes|routed|pass|output|go|"
                      r"goes|leave|leaves|exit|exits|flood|floods|flooded|enqueue|put|mark|normal)\b")
_PORT = re.compile(r"\bport\s*(\d+)\b")
_QUEUE = re.compile(r"\bqueue\s*(\d+)\b")
_DSCP = re.compile(r"\bdscp\s*(?:to\s*|of\s*|value\s*|=\s*)?(\d+)\b")
_SPLIT = re.compile(r",?\s+and\s+(?=(?:those|packets|frames|traffic|from port)\b)")
# A second rule with a verb of its own: "block http to A, and block https to A", "drop arp; forward the rest to port 1".
# It is a rule of its own only when it names its own traffic ("... and send it out port 5" is the same traffic).
_SPLIT_VERB = re.compile(r"(?:,?\s+(?:and|then)|;)\s+(?:also\s+)?(?=(?:drop|block|discard|deny|reject|forward|send|"
                         r"route|flood|output|put|mark)\b)")
_SAME_TRAFFIC = re.compile(r"^\S+\s+(?:it|them|this|that|they)\b")  # "those from B" may be other traffic
# Two rules joined by "and" that each name their own traffic and their own action: "HTTP to A out port 2 and HTTP to B
# out port 3", "from A to B goes out port 2, and the return traffic from B to A goes out port 1".
_AND = re.compile(r",?\s+and\s+(?:then\s+)?|;\s*")

# Protocols an operator may name that no single match field stands for here (DHCP is two ports, the others are not TCP
# or UDP ports): asked about, since ignoring the word would widen the match to all traffic.
UNSUPPORTED = r"\b(dhcp|quic|sctp|gre|ospf|vxlan|igmp|ipsec|lldp|mpls|rtp|sip|stp)\b"
# Reserved ports as output targets (OpenFlow 1.3), the first that fits: "back out its ingress port", "to the reserved
# port ALL", "out all ports", "flood", "to the controller"; a reserved port named but not known here is asked.
_OUT_TO = r"(?:out|through|via|to|into)(?: of)?(?: the| its| their)?"
RESERVED = [
    (rf"\bback (?:{_OUT_TO} )?(?:the |its |their )?(?:same )?(?:ingress|input|incoming|in) port\b(?!\s*\d)|"
     rf"\b{_OUT_TO} (?:same )?(?:ingress|input|incoming) port\b(?!\s*\d)|"
     r"\bback out (?:of )?the (?:same )?port (?:it|they) came in on\b|"
     rf"\b{_OUT_TO}(?: reserved)?(?: port)? in port\b(?!\s*\d)", "IN_PORT"),
    (r"\b(?:to|for) the controller\b|\bcontroller\b", "CONTROLLER"), (r"\bflood(?:s|ed|ing)?\b", "FLOOD"),
    (r"\bnormal\b", "NORMAL"),
    (rf"\b{_OUT_TO} (?:all|every)(?: the)?(?: switch)? ports\b|\bevery port\b|\b(?:reserved )?port all\b|"
     r"\bthe all port\b", "ALL"),
    (r"\b(?:reserved )?port local\b|\bthe local port\b", "LOCAL"),
]
_RESERVED_NAMED = re.compile(r"\breserved (?:output )?port\s+([a-z_]+)")

# The words the patterns above know (netgpt.intent.typos reads a misspelt one as the word: "swtich", "forwrad").
FLOW_WORDS = frozenset("""switch switches node nodes openflow dpid dpids priority forward forwards forwarded
forwarding send sends sending route routes routed routing pass output outputs leave leaves exit exits flood floods
flooded flooding enqueue normal drop drops dropped dropping block blocks blocked blocking discard discards discarded
deny denies denied reject rejects rejected port ports queue arriving arrives arrive entering enters enter coming
incoming ingress egress received source destination destined through towards toward controller traffic packets packet
frames frame timeout idle hard seconds between other remaining everything default matching higher address subnet
network host mark reserved local""".split())

def translate_to_flows(text: str) -> list[dict]:
    """ofctl_rest flow entries for one sentence; IntentError (structured) when it cannot be read with certainty."""
    t = re.sub(r"\b([a-z]+\d?)_([a-z]+)\b", r"\1 \2", checked(text))  # ofctl's field names: "in_port 1", "ipv4_dst"
    t, _ = corrected(t, FLOW_WORDS)
    t = normalised(t)
    _ask_about_protocol_typos(t)
    parts = clauses(t, (_PRIORITY, _TIMEOUT))
    if not parts:
        return _flows(*_read(t))
    # a switch per clause: each clause's rules go to its own switch only; a clause that names no traffic of its own
    # ("... and on switch 3 send it out port 6") is about the traffic of the nearest clause before it that does
    for i in range(1, len(parts)):  # "drop ssh on switch 1 and telnet on switch 2": the verb of the clause before
        parts[i] = re.sub(r"^port(?=\s*\d)", "out port", parts[i])  # "out port 2 on switch 1 and port 3 on switch 2"
        verb = _DROP.search(parts[i - 1]) or _FORWARD.search(parts[i - 1])
        if verb and not (_DROP.search(parts[i]) or _FORWARD.search(parts[i]) or _outputs_named(parts[i])):
            parts[i] = f"{verb.group(0)} {parts[i]}"
    readings = [_read(p) for p in parts]
    own = [_selects(SWITCHES.sub(" ", p)) for p in parts]
    flows = []
    for i, reading in enumerate(readings):
        if not own[i]:
            sources = [j for j in range(i) if own[j]][-1:] or [j for j in range(i + 1, len(parts)) if own[j]][:1]
            if sources:
                reading = _inherit(reading, readings[sources[0]])
        flows += _flows(*reading)
    return flows


def _inherit(reading: tuple, source: tuple) -> tuple:
    """A clause's rules on the traffic of another clause: its match (every rule of it), and whether that is a default."""
    dpids, priority, timeouts, rules, _ = reading
    _, src_priority, src_timeouts, src_rules, src_parts = source
    if src_priority is not None and priority is None or src_timeouts and not timeouts:
        raise ambiguous("the priority or timeout of one switch's clause is not said for the other's",
                        "Does it apply to the other switch's rule too (say it in that clause)?", field="priority")
    if src_parts > 1:
        raise ambiguous("a clause without traffic of its own follows a clause with several rules",
                        "Which traffic does it mean? Please name it in that clause.", field="match")
    matches = list(dict.fromkeys((tuple(m.items()), d) for m, _, _, _, d in src_rules))
    new = [({**dict(m), **match}, actions, queued, drop, default)
           for match, actions, queued, drop, _ in rules for m, default in matches]
    return dpids, priority, timeouts, new, 1


def _read(t: str) -> tuple:
    """(dpids, priority, timeouts, rules, number of parts) of a normalised sentence; a rule is (match, actions,
    queued, drop, is_default)."""
    dpids, t = _take_switches(t)
    priority, t = _take_priority(t)
    timeouts, t = _take_timeouts(t)
    if not (_DROP.search(t) or _FORWARD.search(t) or _PORT.search(t) or IP.search(t) or ipv6_addresses(t)
            or re.search(r"\bto the controller\b", t)):  # "udp dst 67 -> controller"
        raise IntentError("not_understood", "no flow rule found: say what to forward or drop, on which switch")
    if not dpids:
        raise ambiguous("the sentence names no switch", "On which switch (e.g. 'on switch 1')?", field="dpid")
    segments = _segments(t)
    rules: list[tuple] = []
    families = [family(seg) for seg in segments]
    for i, (seg, drop) in enumerate(zip(segments, _drops(segments))):
        is_default = bool(_DEFAULT.search(seg))
        # a part without a protocol of its own takes the one named before it ("ARP from A out port 2, and from B out
        # port 3"), never one named after it ("traffic from A out port 5 and ARP out port 6": the first is all traffic)
        earlier = [f for f in families[:i] if f]
        inherited = earlier[-1] if earlier and not is_default else None
        for part in _per_service(seg):
            for rule in _rules_for(part, drop, inherited):
                if (*rule, drop, is_default) not in rules:  # "web (http)" is one rule
                    rules.append((*rule, drop, is_default))
    return dpids, priority, timeouts, rules, len(segments)


def _flows(dpids: list[int], priority: int | None, timeouts: dict, rules: list[tuple], _parts: int) -> list[dict]:
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
    """'drop telnet and ssh to A' is one rule per service (or transport protocol): the part once per service named,
    without the others."""
    names = sorted((m.start(), m.group(0)) for m in re.finditer(r"\b(?:" + "|".join(SERVICES) + r")\b", seg))
    names = list(dict.fromkeys(n for _, n in names))
    listed = re.search(r"\b(?:tcp|udp|icmp)(?:\s*(?:,|/|&|and|or|,\s*and|,\s*or)\s*(?:tcp|udp|icmp)\b)+", seg)
    if len(names) < 2 and listed:  # "drop tcp and udp from A": one rule per transport protocol
        names = list(dict.fromkeys(re.findall(r"\b(?:tcp|udp|icmp)\b", listed.group(0))))
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
        parts += [p for piece in merged for p in _complete_rules(piece)]
    return parts


def _complete_rules(part: str) -> list[str]:
    """A part split where both sides of an "and" are whole rules (their own traffic and their own output or drop)."""
    pieces, start = [], 0
    cuts = [m for m in _AND.finditer(part)]
    for i, m in enumerate(cuts):
        right_end = cuts[i + 1].start() if i + 1 < len(cuts) else len(part)
        if _whole_rule(part[start:m.start()]) and _whole_rule(part[m.end():right_end]):
            pieces.append(part[start:m.start()])
            start = m.end()
    return pieces + [part[start:]]


def _whole_rule(piece: str) -> bool:
    return _selects(piece) and bool(_DROP.search(piece) or _outputs_named(piece)
                                    or any(OUT.search(piece[:m.start()]) for m in _PORT.finditer(piece)))


def _selects(part: str) -> bool:
    """Whether a part names traffic of its own: an address, a protocol, an ingress port, or 'everything else'."""
    return bool(IP.search(part) or ipv6_addresses(part) or MAC.search(part) or family(part) or _DEFAULT.search(part)
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
    for m in SWITCHES.finditer(t):
        for d in re.findall(r"\d+", m.group(1)):
            if int(d) < 1:
                raise IntentError("invalid", f"switch {d}: datapath ids start at 1", field="dpid")
            if int(d) not in dpids:
                dpids.append(int(d))
    return dpids, SWITCHES.sub(" ", t)


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


def _rules_for(seg: str, drop: bool, inherited: dict | None) -> list[tuple[dict, list, bool]]:
    """(match, actions, sent to a queue) for one part of the sentence; two for 'between A and B'."""
    protocols = {SERVICES[n][0] for n in re.findall(r"\b(?:" + "|".join(SERVICES) + r")\b", seg)}
    protocols |= {{"tcp": 6, "udp": 17, "icmp": 1}[p] for p in re.findall(r"\b(?:tcp|udp|icmp)\b", seg)}
    if len(protocols) > 1:  # "drop tcp src port 99 and udp dst 53": which port goes with which protocol?
        raise ambiguous("one rule names several IP protocols", "Which protocol (one rule each, with its own ports)?",
                        field="ip_proto", options=[{6: "tcp", 17: "udp", 1: "icmp"}[p] for p in sorted(protocols)])
    fam = family(seg) or dict(inherited or {})
    match: dict = {}
    if "eth_type" in fam:
        match["eth_type"] = fam["eth_type"]
    if "ip_proto" in fam:
        match["ip_proto"] = fam["ip_proto"]
    l4 = {6: "tcp", 17: "udp"}.get(fam.get("ip_proto"))

    roles, pair = read_addresses(seg, match)  # roles: position of an address -> "src" | "dst" | "pair"

    outputs: list = []
    l4_port: dict[str, int] = {}
    for m in [*L4_TERSE.finditer(seg), *L4_BARE.finditer(seg)]:
        l4_port["src" if m.group(1) in ("src", "source") else "dst"] = l4_number(m.group(2))
    explicit_out = any(OUT.search(seg[:m.start()]) for m in _PORT.finditer(seg))
    for m in _PORT.finditer(seg):
        left = seg[:m.start()].rstrip()
        role = port_role(left, roles, l4, drop or explicit_out)
        n = int(m.group(1))
        if role == "out":
            if not 1 <= n <= MAX_SWITCH_PORT:
                raise IntentError("invalid", f"switch port {n} does not exist", field="port")
            outputs.append(n)
        elif role == "in_port":
            if not 1 <= n <= MAX_SWITCH_PORT:
                raise IntentError("invalid", f"switch port {n} does not exist", field="in_port")
            set_once(match, "in_port", n)
        elif role in ("l4_src", "l4_dst"):
            l4_port[role[3:]] = l4_number(m.group(1))
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
        set_once(match, f"{l4}_{side}", value)

    named = _RESERVED_NAMED.search(seg)
    if named and named.group(1) not in ("all", "flood", "controller", "in", "local", "normal"):
        raise ambiguous(f"'{named.group(1)}' is not a reserved port this reader sends to", "Which port: IN_PORT, ALL, "
                        "FLOOD, CONTROLLER, LOCAL or NORMAL?", field="actions",
                        options=["IN_PORT", "ALL", "FLOOD", "CONTROLLER", "LOCAL", "NORMAL"])
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
        (version, a), (_, b) = pair
        if match.get("eth_type") == ETH_ARP:
            src, dst, eth = "arp_spa", "arp_tpa", ETH_ARP
        else:
            src, dst, eth = f"{version}_src", f"{version}_dst", ETH_IPV6 if version == "ipv6" else ETH_IPV4
        return [({**match, src: a, dst: b, "eth_type": eth}, actions, bool(queue)),
                ({**match, src: b, dst: a, "eth_type": eth}, actions, bool(queue))]
    return [(match, actions, bool(queue))]
