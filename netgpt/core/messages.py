"""Every message that crosses a process (Redis streams, HTTP) is a pydantic model defined here.

Versioning: each message carries `v` (SCHEMA_VERSION) and a `kind` discriminator. A reader refuses messages of another
major version with a clear error instead of misreading them; adding optional fields does not bump the version.

On Redis, a message is one stream entry with the fields `kind`, `v` and `data` (the message's JSON). Stream and key names
live in `netgpt.core.bus`, next to the code that reads and writes them.
"""
from __future__ import annotations

import json
import math
import time
from enum import Enum
from typing import Annotated, Any, Literal, Union, get_args

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, model_validator

SCHEMA_VERSION = 1


def now() -> float:
    return time.time()


class Message(BaseModel):
    """Common envelope: schema version, creation time (unix seconds) and the sending component."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    v: Literal[1] = SCHEMA_VERSION
    ts: float = Field(default_factory=now, description="Unix time the message was created")
    source: str = Field("", description="Component that produced it, e.g. 'controller', 'edge:mec1'")


# --- Telemetry (controller -> everyone) ------------------------------------------------------------------------------


class PortStats(Message):
    """Counters of one switch port and the rates derived from the previous sample."""

    kind: Literal["port_stats"] = "port_stats"
    dpid: int = Field(ge=0)
    port_no: int = Field(ge=0)
    rx_bytes: int = Field(ge=0)
    tx_bytes: int = Field(ge=0)
    rx_packets: int = Field(ge=0)
    tx_packets: int = Field(ge=0)
    rx_dropped: int = Field(0, ge=0)
    tx_dropped: int = Field(0, ge=0)
    rx_bps: float = Field(0.0, ge=0, description="Receive rate in bit/s since the previous sample")
    tx_bps: float = Field(0.0, ge=0, description="Transmit rate in bit/s since the previous sample")
    interval_s: float = Field(0.0, ge=0, description="Seconds since the previous sample (0 for the first)")
    link: str | None = Field(None, description="Link name this port belongs to, when the topology is known")


class CellStats(Message):
    """Traffic of one radio cell: the sum over its users' access ports (uplink = from users, downlink = to users)."""

    kind: Literal["cell_stats"] = "cell_stats"
    cell: str = Field(min_length=1)
    uplink_bps: float = Field(ge=0)
    downlink_bps: float = Field(ge=0)
    ports: int = Field(ge=0, description="Access ports aggregated")


class FlowStats(Message):
    """Counters of one flow entry."""

    kind: Literal["flow_stats"] = "flow_stats"
    dpid: int = Field(ge=0)
    table_id: int = Field(0, ge=0)
    priority: int = Field(ge=0)
    match: dict[str, Any]
    byte_count: int = Field(ge=0)
    packet_count: int = Field(ge=0)
    duration_s: float = Field(0.0, ge=0)


# --- Edge intelligence (edge agent -> controller) --------------------------------------------------------------------


class ForecastQuantile(BaseModel):
    """One quantile of a forecast: P(actual <= values[i]) = q at step i, as calibrated by the forecaster."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    q: float = Field(gt=0, lt=1)
    values: list[float] = Field(min_length=1)


_TARGET_METRICS = {"port": ("tx_bps",), "link": ("tx_bps",), "cell": ("demand_bps", "requests_rps")}


class ForecastTarget(BaseModel):
    """What a forecast is of: a switch port's transmit rate, a directed link's rate (dpids), or a cell's demand (bit/s
    expected from its users' inferred intents, or requests/s). On the wire an object; its name (str(target), e.g.
    'port:1:2:tx_bps', 'link:1-2:tx_bps', 'cell:c1:demand_bps') is what logs and Redis hash keys use, and a name is
    also read where a target is expected (v1 messages carried it as a string)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    kind: Literal["port", "link", "cell"]
    metric: Literal["tx_bps", "demand_bps", "requests_rps"]
    dpid: int | None = Field(None, ge=0, description="port: the switch")
    port_no: int | None = Field(None, ge=0, description="port: the port number on that switch")
    link: tuple[int, int] | None = Field(None, description="link: (from dpid, to dpid), directed")
    cell: str | None = Field(None, min_length=1, description="cell: its id, e.g. 'c1'")

    @model_validator(mode="before")
    @classmethod
    def _from_name(cls, data: Any) -> Any:
        if not isinstance(data, str):
            return data
        kind, _, rest = data.partition(":")
        parts = rest.split(":")
        try:
            if kind == "port" and len(parts) == 3:
                return {"kind": kind, "dpid": int(parts[0]), "port_no": int(parts[1]), "metric": parts[2]}
            if kind == "link" and len(parts) == 2:
                a, b = parts[0].split("-")
                return {"kind": kind, "link": (int(a), int(b)), "metric": parts[1]}
            if kind == "cell" and len(parts) == 2:
                return {"kind": kind, "cell": parts[0], "metric": parts[1]}
        except ValueError:
            pass
        raise ValueError(f"forecast target {data!r} is not 'port:<dpid>:<port>:tx_bps', 'link:<dpid>-<dpid>:tx_bps' "
                         "or 'cell:<cell>:demand_bps|requests_rps' (switches by dpid)")

    @model_validator(mode="after")
    def _check(self) -> "ForecastTarget":
        needs = {"port": ("dpid", "port_no"), "link": ("link",), "cell": ("cell",)}[self.kind]
        given = {f for f in ("dpid", "port_no", "link", "cell") if getattr(self, f) is not None}
        if given != set(needs):
            raise ValueError(f"a {self.kind} target has {' and '.join(needs)}, got {sorted(given) or 'none'}")
        if self.metric not in _TARGET_METRICS[self.kind]:
            raise ValueError(f"a {self.kind} target's metric is {' or '.join(_TARGET_METRICS[self.kind])}, "
                             f"not {self.metric}")
        return self

    @classmethod
    def of_port(cls, dpid: int, port_no: int) -> "ForecastTarget":
        return cls(kind="port", dpid=dpid, port_no=port_no, metric="tx_bps")

    @classmethod
    def of_link(cls, a: int, b: int) -> "ForecastTarget":
        return cls(kind="link", link=(a, b), metric="tx_bps")

    @classmethod
    def of_cell(cls, cell: str, metric: Literal["demand_bps", "requests_rps"]) -> "ForecastTarget":
        return cls(kind="cell", cell=cell, metric=metric)

    def __str__(self) -> str:
        entity = {"port": f"{self.dpid}:{self.port_no}", "link": "-".join(map(str, self.link or ())),
                  "cell": self.cell}[self.kind]
        return f"{self.kind}:{entity}:{self.metric}"


class Forecast(Message):
    """A forecast of one series (a link's rate, a cell's demand) from an origin time, `step_s` apart."""

    kind: Literal["forecast"] = "forecast"
    target: ForecastTarget = Field(description="What is forecast (a name such as 'port:1:2:tx_bps' is read too)")
    origin_ts: float = Field(description="Unix time of the last observation the forecast saw")
    step_s: float = Field(gt=0)
    values: list[float] = Field(min_length=1)
    lower: list[float] | None = Field(None, description="Lower bound of the prediction interval, per step")
    upper: list[float] | None = Field(None, description="Upper bound of the prediction interval, per step")
    interval_level: float | None = Field(None, gt=0, lt=1, description="e.g. 0.9 for a 90% interval")
    quantiles: list[ForecastQuantile] | None = Field(
        None, description="Calibrated quantiles per step, e.g. q 0.1 / 0.5 / 0.9; levels distinct, values non-decreasing "
                          "in q at every step. Optional: a v1 reader without them still reads the message")
    model: str = Field(min_length=1)

    @model_validator(mode="after")
    def _check_shapes(self) -> "Forecast":
        seqs = [("values", self.values), ("lower", self.lower), ("upper", self.upper)]
        seqs += [(f"quantile {b.q}", b.values) for b in self.quantiles or []]
        for name, seq in seqs:
            if seq is None:
                continue
            if len(seq) != len(self.values):
                raise ValueError(f"{name} has {len(seq)} steps, values has {len(self.values)}")
            if any(not math.isfinite(x) for x in seq):
                raise ValueError(f"{name} contains NaN or infinity")
        bands = sorted(self.quantiles or [], key=lambda b: b.q)
        for a, b in zip(bands, bands[1:]):
            if a.q == b.q:
                raise ValueError(f"quantile {a.q} is given twice")
            if any(lo > hi for lo, hi in zip(a.values, b.values)):
                raise ValueError(f"quantile {b.q} lies below quantile {a.q} at some step")
        return self

    def at_quantile(self, q: float) -> list[float]:
        """The forecast at quantile q (e.g. 0.9: what to provision for), or `values` when the message has no such
        quantile (an older forecaster, a method without intervals)."""
        for band in self.quantiles or []:
            if abs(band.q - q) < 1e-9:
                return band.values
        return self.values

    def peak(self, q: float) -> float:
        """The highest step at quantile q: what a consumer provisions for until `end_ts`."""
        return max(self.at_quantile(q))

    @property
    def end_ts(self) -> float:
        """Unix time the last forecast step ends."""
        return self.origin_ts + self.step_s * len(self.values)


class RegimeChange(Message):
    """A series left its forecast interval several steps running (a flash crowd, an outage) or came back: the
    forecaster adapts to the recent past meanwhile. On the audit stream; the latest per target in Keys.FORECAST_REGIMES."""

    kind: Literal["regime_change"] = "regime_change"
    target: ForecastTarget
    state: Literal["start", "end"]
    direction: Literal["up", "down"] = Field(description="up: above the interval (more load than forecast)")
    since_ts: float = Field(description="Unix time of the first observation outside the interval")
    ratio: float = Field(ge=0, allow_inf_nan=False, description="Actual / forecast load over the steps outside")
    steps_outside: int = Field(ge=0)
    model: str = Field(min_length=1)


class ServiceClass(str, Enum):
    video_streaming = "video_streaming"
    navigation = "navigation"
    ar_vr = "ar_vr"
    gaming = "gaming"
    web_chat = "web_chat"
    file_transfer = "file_transfer"
    voice_video_call = "voice_video_call"


class LatencyClass(str, Enum):
    ultra_low = "ultra_low"  # < 20 ms: AR/VR, cloud gaming
    low = "low"  # < 100 ms: calls, navigation
    best_effort = "best_effort"


class UserIntent(Message):
    """What a user's prompt is expected to lead to, inferred by the edge LM: the demand it will put on the network."""

    kind: Literal["user_intent"] = "user_intent"
    request_id: str = Field(min_length=1)
    user: str = Field(min_length=1)
    cell: str = Field(min_length=1)
    service_class: ServiceClass
    confidence: float = Field(ge=0, le=1)
    bandwidth_mbps: float = Field(ge=0)
    duration_s: float = Field(ge=0)
    latency_class: LatencyClass
    model: str = ""
    user_ip: str | None = Field(None, description="The user's address, when the agent knows it")
    server_ip: str | None = Field(None, description="Where the traffic will come from/go to, when known")


class AgentHeartbeat(Message):
    """An edge agent announcing itself: which cells it serves, how much it can take and what it has loaded."""

    kind: Literal["agent_heartbeat"] = "agent_heartbeat"
    node_id: str = Field(min_length=1)
    address: str = Field(min_length=1, description="host:port of the agent's HTTP API")
    cells: list[str] = []
    capacity_rps: float = Field(gt=0, description="Requests per second the node can serve")
    load_rps: float = Field(ge=0)
    models: list[str] = []
    adapters: list[str] = []


# --- Operator intents and network actions (intent layer / controller) ------------------------------------------------


class IntentVerb(str, Enum):
    """What an operator asks for, in the high-level intent language (netgpt.intent.parse_intent)."""

    rate_limit = "rate_limit"
    prioritize = "prioritize"
    block = "block"
    allow = "allow"
    avoid_link = "avoid_link"
    reserve_bandwidth = "reserve_bandwidth"
    allocate_compute = "allocate_compute"
    query = "query"


class QuerySubject(str, Enum):
    link_utilization_forecast = "link_utilization_forecast"
    link_throughput = "link_throughput"
    compute_load = "compute_load"
    flows = "flows"
    intent_status = "intent_status"


class TimeWindow(BaseModel):
    """A daily window in the network's local time; either end may be open."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    start: str | None = Field(None, pattern=r"^([01]\d|2[0-3]):[0-5]\d$")
    end: str | None = Field(None, pattern=r"^([01]\d|2[0-3]):[0-5]\d$")


class HighLevelIntent(BaseModel):
    """One operator sentence, understood: the stable contract of netgpt.intent.parse_intent.

    Plain fields, null when the sentence does not give them. Names are as the operator wrote them, lower case, with
    "cell N" as "cN", "switch N" as "sN", "host N" as "hN" and "user N" as "uN". A rate is in Mbit/s whatever unit the
    sentence used. Not a Message: it travels inside OperatorRequest/IntentRecord, which carry the envelope.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    action: IntentVerb
    traffic_class: ServiceClass | None = None
    scope: Literal["network"] | list[str] | None = None
    src: str | None = None
    dst: str | None = None
    link: list[str] | None = Field(None, min_length=2, max_length=2)
    rate_mbps: float | None = Field(None, gt=0)
    node: str | None = None
    window: TimeWindow | None = None
    duration_min: float | None = Field(None, gt=0)
    subject: QuerySubject | None = None
    threshold_pct: float | None = Field(None, ge=0, le=1000)
    horizon_min: float | None = Field(None, gt=0)


class IntentProblem(BaseModel):
    """Why a sentence gave no intent: shown to the operator as it is, and returned by the operator API as JSON.

    kind: empty | too_long | not_understood | ambiguous (a clarification request: `question`, and `options` when the
    choice is between known readings) | invalid (a value out of range) | refused (instructions smuggled into the text) |
    unknown_entity (a switch, host, cell, link or node the network does not have) | conflict (with installed intents).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["empty", "too_long", "not_understood", "ambiguous", "invalid", "refused", "unknown_entity",
                  "conflict"]
    message: str
    field: str | None = None
    question: str | None = None
    options: list[str] = []
    intent_id: str | None = Field(None, description="The failed record kept for an understood intent that could "
                                                    "not be applied (conflict, unknown entity)")


class OperatorIntentAction(str, Enum):
    rate_limit = "rate_limit"  # cap a traffic class with a meter
    prioritize = "prioritize"  # raise a class's priority
    block = "block"  # drop the selected traffic
    avoid_link = "avoid_link"  # keep traffic off a link
    reroute = "reroute"  # move a class to another path
    allocate = "allocate"  # pin a cell to an MEC node
    flows = "flows"  # install the given ofctl flow entries as they are (a flow-level intent)


class OperatorIntent(Message):
    """A validated operator intent, as the intent layer hands it to the controller."""

    kind: Literal["operator_intent"] = "operator_intent"
    intent_id: str = Field(min_length=1)
    text: str = Field("", description="The operator's own words, kept for the audit trail")
    action: OperatorIntentAction
    selector: dict[str, Any] = Field(default_factory=dict, description="Which traffic, e.g. {'cell': 'c1', 'ip_proto': 6}")
    params: dict[str, Any] = Field(default_factory=dict, description="e.g. {'rate_mbps': 20} or {'link': 's1-s2'}")
    priority: int = Field(100, ge=0, le=65535)
    expires_ts: float | None = None
    flows: list[dict[str, Any]] = Field(default_factory=list, description="action 'flows': ofctl_rest entries")


class IntentWithdrawal(Message):
    """The operator takes an intent back: the controller removes everything it installed for it."""

    kind: Literal["intent_withdrawal"] = "intent_withdrawal"
    intent_id: str = Field(min_length=1)
    reason: str = "withdrawn by the operator"


class IntentState(str, Enum):
    """ONOS's lifecycle, as far as this controller goes."""

    submitted = "submitted"  # accepted by the operator API, not yet compiled
    compiled = "compiled"  # turned into controller instructions, checked for conflicts, sent to the controller
    installed = "installed"  # every switch acknowledged (barrier) every change
    verified = "verified"  # read back from the switches (flow statistics), and measured where traffic ran
    failed = "failed"  # not installed; anything half-installed was rolled back
    withdrawn = "withdrawn"  # removed on command or at expiry


class IntentEvent(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    state: IntentState
    ts: float = Field(default_factory=now)
    detail: str = ""


class IntentRecord(Message):
    """An operator intent and its lifecycle, as the intent store keeps it (Redis hash netgpt:intents)."""

    kind: Literal["intent_record"] = "intent_record"
    intent_id: str = Field(min_length=1)
    text: str = ""
    level: Literal["high", "flow"] = "high"
    intent: HighLevelIntent | None = None
    flows: list[dict[str, Any]] = Field(default_factory=list, description="flow-level: the ofctl entries")
    compiled: list[OperatorIntent] = Field(default_factory=list, description="what the controller was sent")
    state: IntentState = IntentState.submitted
    history: list[IntentEvent] = Field(default_factory=list)
    read_by: str = ""
    confidence: float | None = None
    expires_ts: float | None = None
    measured: dict[str, Any] = Field(default_factory=dict, description="what verification read: entries, counters")


class IntentResult(Message):
    """What the controller did with an operator intent: applied, rejected (with the reason) or reverted on expiry."""

    kind: Literal["intent_result"] = "intent_result"
    intent_id: str = Field(min_length=1)
    accepted: bool
    reason: str = ""


class Allocation(Message):
    """Which MEC node serves which cell, reached through a virtual IP."""

    kind: Literal["allocation"] = "allocation"
    cell: str = Field(min_length=1)
    node_id: str = Field(min_length=1)
    vip: str = Field(min_length=1)
    reason: str = ""
    previous_node_id: str | None = None


class FlowOp(str, Enum):
    add = "add"
    modify = "modify"
    delete = "delete"


class FlowAction(Message):
    """One OpenFlow change the controller made or is asked to make; written to the audit stream, reversible."""

    kind: Literal["flow_action"] = "flow_action"
    action_id: str = Field(min_length=1)
    op: FlowOp
    dpid: int = Field(ge=0)
    table_id: int = Field(0, ge=0)
    priority: int = Field(0, ge=0, le=65535)
    match: dict[str, Any] = Field(default_factory=dict)
    actions: list[dict[str, Any]] = Field(default_factory=list, description="ofctl-style action dicts")
    meter_id: int | None = Field(None, ge=1)
    previous_actions: list[dict[str, Any]] | None = Field(None, description="What the flow did before: to revert")
    reason: str = ""
    cause_id: str | None = Field(None, description="The intent, forecast or allocation that caused it")


# --- Edge prompt service (user <-> edge agent, HTTP) -----------------------------------------------------------------


class CollabMode(str, Enum):
    netgpt = "netgpt"  # edge completes the prompt with location context, cloud answers
    cloud_only = "cloud-only"  # the raw prompt goes to the cloud (the paper's baseline)
    edge_only = "edge-only"
    routed = "routed"  # the edge answers when confident, otherwise the cloud


class EdgePromptRequest(Message):
    kind: Literal["edge_prompt_request"] = "edge_prompt_request"
    user: str = Field(min_length=1, max_length=128)
    cell: str = Field(min_length=1, max_length=64)
    text: str = Field(min_length=1, max_length=2000)
    mode: CollabMode = CollabMode.netgpt


class EdgePromptResponse(Message):
    kind: Literal["edge_prompt_response"] = "edge_prompt_response"
    request_id: str
    mode: CollabMode
    answer: str
    completed_prompt: str
    answered_by: Literal["edge", "cloud"]
    edge_tokens_in: int = Field(0, ge=0)
    edge_tokens_out: int = Field(0, ge=0)
    cloud_tokens_in: int = Field(0, ge=0)
    cloud_tokens_out: int = Field(0, ge=0)
    edge_ms: float = Field(0.0, ge=0)
    cloud_ms: float = Field(0.0, ge=0)
    total_ms: float = Field(0.0, ge=0)
    flags: list[str] = Field(default_factory=list, description="e.g. 'cloud_unreachable_edge_answer'")
    location_facts: list[str] = Field(default_factory=list,
                                      description="Kinds of location facts the edge added, e.g. 'city', 'local_time'")
    edge_confidence: float | None = Field(None, ge=0, le=1, description="How sure the edge was of its own answer")
    answer_edge_prefix: str = Field("", description="The start of `answer` that the edge wrote (the prefill mode's "
                                                    "opener), which the cloud continued; not the cloud's text")
    edge_lm_draft: str = Field("", description="The edge LM's own words added to the completed prompt")


AnyMessage = Annotated[
    Union[
        PortStats,
        CellStats,
        FlowStats,
        Forecast,
        RegimeChange,
        UserIntent,
        AgentHeartbeat,
        OperatorIntent,
        IntentWithdrawal,
        IntentRecord,
        IntentResult,
        Allocation,
        FlowAction,
        EdgePromptRequest,
        EdgePromptResponse,
    ],
    Field(discriminator="kind"),
]

_ADAPTER: TypeAdapter[Any] = TypeAdapter(AnyMessage)

MESSAGE_TYPES: dict[str, type[Message]] = {  # kind -> model, read off the union: one list to keep
    m.model_fields["kind"].default: m for m in get_args(get_args(AnyMessage)[0])  # type: ignore[misc]
}


class MessageError(ValueError):
    """A message that cannot be accepted: wrong version, unknown kind or invalid fields. The text says which."""


def first_error(errors: list[dict], skip: tuple[str, ...] = ("body",)) -> str:
    """A pydantic/FastAPI validation error list as one line: 'field.path: what is wrong' (the first error)."""
    if not errors:
        return "invalid request"
    where = ".".join(str(p) for p in errors[0].get("loc", ()) if p not in skip)
    msg = str(errors[0].get("msg", "invalid"))
    return f"{where}: {msg}" if where else msg


def parse_message(raw: str | bytes | dict[str, Any]) -> Message:
    """Parse any message by its `kind`. Raises MessageError with a one-line reason instead of a validation traceback."""
    try:
        data = json.loads(raw) if isinstance(raw, (str, bytes)) else raw
    except ValueError as exc:
        raise MessageError(f"not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise MessageError("a message must be a JSON object")
    if data.get("v", SCHEMA_VERSION) != SCHEMA_VERSION:
        raise MessageError(f"schema version {data.get('v')!r} is not supported (this build reads v{SCHEMA_VERSION})")
    if data.get("kind") not in MESSAGE_TYPES:
        raise MessageError(f"unknown message kind {data.get('kind')!r}")
    try:
        return _ADAPTER.validate_python(data)
    except ValueError as exc:
        errors = getattr(exc, "errors", lambda: [])()
        detail = "; ".join(f"{'.'.join(str(p) for p in e['loc'][1:])}: {e['msg']}" for e in errors) or str(exc)
        raise MessageError(f"invalid {data['kind']}: {detail}") from None
