#!/usr/bin/env python3
"""A fake ROS 2 robot that speaks DDS exactly as rmw_cyclonedds does, with no ROS installed.

It is the test peer of `fms_agent --interface ros2dds` (zenoh-plugin-ros2dds inside the
agent): one Cyclone DDS participant (Python binding) on domain $ROS_DOMAIN_ID (default 0)
holding one ROS node, `fake_robot`, in `--namespace` (default: the root namespace):

  publishes   rt/<ns>/odom            nav_msgs/Odometry                  frame odom, 20 Hz
              rt/<ns>/amcl_pose       geometry_msgs/PoseWithCovarianceStamped
                                                                        frame map, 5 Hz,
                                                                        reliable + transient-local
              rt/<ns>/battery_state   sensor_msgs/BatteryState           percentage 0.87, 1 Hz
  subscribes  rt/<ns>/cmd_vel         geometry_msgs/Twist                every sample recorded
  serves      <ns>/navigate_to_pose   nav2_msgs/action/NavigateToPose    a fake Nav2 navigator
  announces   ros_discovery_info      rmw_dds_common/ParticipantEntitiesInfo (the node and
                                      the GIDs of all its readers and writers), every 1 s

Wire format as rmw_cyclonedds: XCDR1 ("plain CDR", encapsulation 00 01 00 00 on this
little-endian host) everywhere, requests and replies carrying the 16-byte cdds request header
{uint64 client_guid; int64 sequence_number} before the ROS fields (modelled here as the two
first members of each Request/Response struct), replies copying the request's header.

The fake Nav2 (NavigateToPose, Jazzy definitions; Humble's `std_msgs/Empty result` with
`--distro humble`):
  * send_goal: records the goal, accepts it (or rejects it with mode accept=false) and drives
    the robot toward it at `drive_speed` m/s, streaming feedback at 10 Hz;
  * get_result: held until the goal ends, then SUCCEEDED (4), or ABORTED (6) with
    error_code/error_msg when mode outcome=abort (after abort_after_s of driving);
  * cancel_goal: recorded; the goal goes CANCELING (3) then CANCELED (5) ~50 ms later;
    return_code 0 and the goal listed in goals_canceling (rcl_action's rules for ids/stamps);
  * a new goal while one runs PREEMPTS it as Nav2's SimpleActionServer::accept_pending_goal
    does: the old goal ends ABORTED (6) with an empty result (error_code 0, error_msg "").

Control / inspection over HTTP on 127.0.0.1:--control-port (JSON):
  GET  /goals  /cancels  /cmd_vel  /state
  POST /mode   {"outcome": "succeed"|"abort", "drive_speed": 1.0, "abort_after_s": 1.0,
                "error_code": 9000, "error_msg": "...", "accept": true, "battery": 0.87}
  POST /reset  forget the records (goals, cancels, cmd_vel), default mode, abort a running goal
  POST /pose   {"x": .., "y": .., "yaw": ..}  teleport (map frame)

Usage: fake_robot.py [--namespace /tb3_1] [--distro jazzy|humble] [--control-port 8765]
                     [--start x,y,yaw] [--node-name fake_robot]
Logs go to stderr; the line "fake_robot ready: control http://127.0.0.1:<port>" on stdout
says the DDS entities exist and the control server listens.
"""

import argparse
import json
import math
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Optional

from cyclonedds.core import Qos, Policy
from cyclonedds.domain import DomainParticipant
from cyclonedds.idl import IdlStruct
from cyclonedds.idl.types import array, float32, float64, int8, int16, int32, int64, sequence
from cyclonedds.idl.types import uint8, uint16, uint32, uint64
from cyclonedds.pub import DataWriter
from cyclonedds.sub import DataReader
from cyclonedds.topic import Topic
from cyclonedds.util import duration

# --------------------------------------------------------------------------------------------
# ROS 2 message types, with the DDS type names rosidl/rmw give them (`pkg::msg::dds_::Name_`).
# Field order and types are the ROS 2 (Jazzy) definitions; names do not travel on the wire.
# --------------------------------------------------------------------------------------------


def _zeros(n):
    return lambda: [0.0] * n


@dataclass
class Time(IdlStruct, typename="builtin_interfaces::msg::dds_::Time_"):
    sec: int32 = 0
    nanosec: uint32 = 0


@dataclass
class Duration(IdlStruct, typename="builtin_interfaces::msg::dds_::Duration_"):
    sec: int32 = 0
    nanosec: uint32 = 0


@dataclass
class Header(IdlStruct, typename="std_msgs::msg::dds_::Header_"):
    stamp: Time = field(default_factory=Time)
    frame_id: str = ""


@dataclass
class Point(IdlStruct, typename="geometry_msgs::msg::dds_::Point_"):
    x: float64 = 0.0
    y: float64 = 0.0
    z: float64 = 0.0


@dataclass
class Quaternion(IdlStruct, typename="geometry_msgs::msg::dds_::Quaternion_"):
    x: float64 = 0.0
    y: float64 = 0.0
    z: float64 = 0.0
    w: float64 = 1.0


@dataclass
class Pose(IdlStruct, typename="geometry_msgs::msg::dds_::Pose_"):
    position: Point = field(default_factory=Point)
    orientation: Quaternion = field(default_factory=Quaternion)


@dataclass
class PoseWithCovariance(IdlStruct, typename="geometry_msgs::msg::dds_::PoseWithCovariance_"):
    pose: Pose = field(default_factory=Pose)
    covariance: array[float64, 36] = field(default_factory=_zeros(36))


@dataclass
class PoseStamped(IdlStruct, typename="geometry_msgs::msg::dds_::PoseStamped_"):
    header: Header = field(default_factory=Header)
    pose: Pose = field(default_factory=Pose)


@dataclass
class PoseWithCovarianceStamped(
    IdlStruct, typename="geometry_msgs::msg::dds_::PoseWithCovarianceStamped_"
):
    header: Header = field(default_factory=Header)
    pose: PoseWithCovariance = field(default_factory=PoseWithCovariance)


@dataclass
class Vector3(IdlStruct, typename="geometry_msgs::msg::dds_::Vector3_"):
    x: float64 = 0.0
    y: float64 = 0.0
    z: float64 = 0.0


@dataclass
class Twist(IdlStruct, typename="geometry_msgs::msg::dds_::Twist_"):
    linear: Vector3 = field(default_factory=Vector3)
    angular: Vector3 = field(default_factory=Vector3)


@dataclass
class TwistWithCovariance(IdlStruct, typename="geometry_msgs::msg::dds_::TwistWithCovariance_"):
    twist: Twist = field(default_factory=Twist)
    covariance: array[float64, 36] = field(default_factory=_zeros(36))


@dataclass
class Odometry(IdlStruct, typename="nav_msgs::msg::dds_::Odometry_"):
    header: Header = field(default_factory=Header)
    child_frame_id: str = ""
    pose: PoseWithCovariance = field(default_factory=PoseWithCovariance)
    twist: TwistWithCovariance = field(default_factory=TwistWithCovariance)


@dataclass
class BatteryState(IdlStruct, typename="sensor_msgs::msg::dds_::BatteryState_"):
    header: Header = field(default_factory=Header)
    voltage: float32 = 0.0
    temperature: float32 = 0.0
    current: float32 = 0.0
    charge: float32 = 0.0
    capacity: float32 = 0.0
    design_capacity: float32 = 0.0
    percentage: float32 = 0.0
    power_supply_status: uint8 = 0
    power_supply_health: uint8 = 0
    power_supply_technology: uint8 = 0
    present: bool = False
    cell_voltage: sequence[float32] = field(default_factory=list)
    cell_temperature: sequence[float32] = field(default_factory=list)
    location: str = ""
    serial_number: str = ""


@dataclass
class UUID(IdlStruct, typename="unique_identifier_msgs::msg::dds_::UUID_"):
    uuid: array[uint8, 16] = field(default_factory=lambda: [0] * 16)


@dataclass
class GoalInfo(IdlStruct, typename="action_msgs::msg::dds_::GoalInfo_"):
    goal_id: UUID = field(default_factory=UUID)
    stamp: Time = field(default_factory=Time)


@dataclass
class GoalStatus(IdlStruct, typename="action_msgs::msg::dds_::GoalStatus_"):
    goal_info: GoalInfo = field(default_factory=GoalInfo)
    status: int8 = 0


@dataclass
class GoalStatusArray(IdlStruct, typename="action_msgs::msg::dds_::GoalStatusArray_"):
    status_list: sequence[GoalStatus] = field(default_factory=list)


# Services: the two first members are rmw_cyclonedds' cdds_request_header_t.
@dataclass
class CancelGoal_Request(IdlStruct, typename="action_msgs::srv::dds_::CancelGoal_Request_"):
    client_guid: uint64 = 0
    sequence_number: int64 = 0
    goal_info: GoalInfo = field(default_factory=GoalInfo)


@dataclass
class CancelGoal_Response(IdlStruct, typename="action_msgs::srv::dds_::CancelGoal_Response_"):
    client_guid: uint64 = 0
    sequence_number: int64 = 0
    return_code: int8 = 0
    goals_canceling: sequence[GoalInfo] = field(default_factory=list)


@dataclass
class NavigateToPose_Goal(IdlStruct, typename="nav2_msgs::action::dds_::NavigateToPose_Goal_"):
    pose: PoseStamped = field(default_factory=PoseStamped)
    behavior_tree: str = ""


@dataclass
class NavigateToPose_Feedback(
    IdlStruct, typename="nav2_msgs::action::dds_::NavigateToPose_Feedback_"
):
    current_pose: PoseStamped = field(default_factory=PoseStamped)
    navigation_time: Duration = field(default_factory=Duration)
    estimated_time_remaining: Duration = field(default_factory=Duration)
    number_of_recoveries: int16 = 0
    distance_remaining: float32 = 0.0


@dataclass
class NavigateToPose_FeedbackMessage(
    IdlStruct, typename="nav2_msgs::action::dds_::NavigateToPose_FeedbackMessage_"
):
    goal_id: UUID = field(default_factory=UUID)
    feedback: NavigateToPose_Feedback = field(default_factory=NavigateToPose_Feedback)


@dataclass
class NavigateToPose_SendGoal_Request(
    IdlStruct, typename="nav2_msgs::action::dds_::NavigateToPose_SendGoal_Request_"
):
    client_guid: uint64 = 0
    sequence_number: int64 = 0
    goal_id: UUID = field(default_factory=UUID)
    goal: NavigateToPose_Goal = field(default_factory=NavigateToPose_Goal)


@dataclass
class NavigateToPose_SendGoal_Response(
    IdlStruct, typename="nav2_msgs::action::dds_::NavigateToPose_SendGoal_Response_"
):
    client_guid: uint64 = 0
    sequence_number: int64 = 0
    accepted: bool = False
    stamp: Time = field(default_factory=Time)


@dataclass
class NavigateToPose_GetResult_Request(
    IdlStruct, typename="nav2_msgs::action::dds_::NavigateToPose_GetResult_Request_"
):
    client_guid: uint64 = 0
    sequence_number: int64 = 0
    goal_id: UUID = field(default_factory=UUID)


# The distribution-dependent types: the GID (16 bytes since Iron, char[24] in Humble) and
# NavigateToPose's result (Jazzy: error_code + error_msg; Humble: std_msgs/Empty). Built once
# per process (two types with one DDS name in one process would be asking for trouble).
_DISTRO_TYPES: dict = {}


def distro_types(distro: str):
    """The types that differ between ROS distributions, as a dict; `distro` is jazzy or humble."""
    if distro in _DISTRO_TYPES:
        return _DISTRO_TYPES[distro]
    if _DISTRO_TYPES:
        raise RuntimeError("one ROS distribution per process")
    humble = distro == "humble"
    gid_len = 24 if humble else 16

    @dataclass
    class Gid(IdlStruct, typename="rmw_dds_common::msg::dds_::Gid_"):
        data: array[uint8, gid_len] = field(default_factory=lambda: [0] * gid_len)

    @dataclass
    class NodeEntitiesInfo(IdlStruct, typename="rmw_dds_common::msg::dds_::NodeEntitiesInfo_"):
        node_namespace: str = ""
        node_name: str = ""
        reader_gid_seq: sequence[Gid] = field(default_factory=list)
        writer_gid_seq: sequence[Gid] = field(default_factory=list)

    @dataclass
    class ParticipantEntitiesInfo(
        IdlStruct, typename="rmw_dds_common::msg::dds_::ParticipantEntitiesInfo_"
    ):
        gid: Gid = field(default_factory=Gid)
        node_entities_info_seq: sequence[NodeEntitiesInfo] = field(default_factory=list)

    if humble:

        @dataclass
        class Empty(IdlStruct, typename="std_msgs::msg::dds_::Empty_"):
            structure_needs_at_least_one_member: uint8 = 0

        @dataclass
        class NavigateToPose_GetResult_Response(
            IdlStruct, typename="nav2_msgs::action::dds_::NavigateToPose_GetResult_Response_"
        ):
            client_guid: uint64 = 0
            sequence_number: int64 = 0
            status: int8 = 0
            result: Empty = field(default_factory=Empty)

        def make_result(error_code, error_msg):
            return Empty()

    else:

        @dataclass
        class NavigateToPose_Result(
            IdlStruct, typename="nav2_msgs::action::dds_::NavigateToPose_Result_"
        ):
            error_code: uint16 = 0
            error_msg: str = ""

        @dataclass
        class NavigateToPose_GetResult_Response(
            IdlStruct, typename="nav2_msgs::action::dds_::NavigateToPose_GetResult_Response_"
        ):
            client_guid: uint64 = 0
            sequence_number: int64 = 0
            status: int8 = 0
            result: NavigateToPose_Result = field(default_factory=NavigateToPose_Result)

        def make_result(error_code, error_msg):
            return NavigateToPose_Result(error_code=error_code, error_msg=error_msg)

    types = {
        "gid_len": gid_len,
        "Gid": Gid,
        "NodeEntitiesInfo": NodeEntitiesInfo,
        "ParticipantEntitiesInfo": ParticipantEntitiesInfo,
        "GetResult_Response": NavigateToPose_GetResult_Response,
        "make_result": make_result,
    }
    _DISTRO_TYPES[distro] = types
    return types


# rmw_dds_common/ParticipantEntitiesInfo's type hash (Iron, Jazzy), as rmw puts it in USER_DATA.
ROS_DISCOVERY_INFO_TYPE_HASH = (
    "RIHS01_91a0593bacdcc50ea9bdcf849a938b128412cc1ea821245c663bcd26f83c295e"
)

# action_msgs/GoalStatus
STATUS_UNKNOWN, STATUS_ACCEPTED, STATUS_EXECUTING, STATUS_CANCELING = 0, 1, 2, 3
STATUS_SUCCEEDED, STATUS_CANCELED, STATUS_ABORTED = 4, 5, 6
STATUS_NAMES = {
    0: "UNKNOWN", 1: "ACCEPTED", 2: "EXECUTING", 3: "CANCELING",
    4: "SUCCEEDED", 5: "CANCELED", 6: "ABORTED",
}
TERMINAL = (STATUS_SUCCEEDED, STATUS_CANCELED, STATUS_ABORTED)
# action_msgs/CancelGoal return codes
CANCEL_ERROR_NONE, CANCEL_ERROR_REJECTED = 0, 1
CANCEL_ERROR_UNKNOWN_GOAL_ID, CANCEL_ERROR_GOAL_TERMINATED = 2, 3
# nav2_msgs/action/NavigateToPose result codes (Jazzy)
NAV2_ERROR_UNKNOWN = 9000

# --------------------------------------------------------------------------------------------
# QoS as rmw_cyclonedds sets it: XCDR1 data representation on every reader and writer.
# --------------------------------------------------------------------------------------------

XCDR1 = Policy.DataRepresentation(use_cdrv0_representation=True)
RELIABLE = Policy.Reliability.Reliable(max_blocking_time=duration(milliseconds=100))


def qos_default(depth=10):
    """rmw_qos_profile_default (and rmw_qos_profile_services_default): reliable, volatile."""
    return Qos(RELIABLE, Policy.Durability.Volatile, Policy.History.KeepLast(depth), XCDR1)


def qos_latched(depth=1, user_data: Optional[bytes] = None):
    """Reliable + transient-local, keep last `depth` (AMCL's pose, action status, discovery)."""
    policies = [RELIABLE, Policy.Durability.TransientLocal, Policy.History.KeepLast(depth), XCDR1]
    if user_data:
        policies.append(Policy.Userdata(data=user_data))
    return Qos(*policies)


# --------------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------------


def log(msg: str) -> None:
    t = time.time()
    stamp = time.strftime("%H:%M:%S", time.localtime(t)) + f".{int(t * 1000) % 1000:03d}"
    sys.stderr.write(f"[fake_robot {stamp}] {msg}\n")
    sys.stderr.flush()


def ros_time(t: float) -> Time:
    sec = int(math.floor(t))
    return Time(sec=sec, nanosec=int((t - sec) * 1e9))


def ros_duration(d: float) -> Duration:
    d = max(0.0, d)
    sec = int(math.floor(d))
    return Duration(sec=sec, nanosec=int((d - sec) * 1e9))


def yaw_to_quaternion(yaw: float) -> Quaternion:
    return Quaternion(x=0.0, y=0.0, z=math.sin(yaw / 2.0), w=math.cos(yaw / 2.0))


def quaternion_to_yaw(q: Quaternion) -> float:
    return math.atan2(2.0 * (q.w * q.z + q.x * q.y), 1.0 - 2.0 * (q.y * q.y + q.z * q.z))


def uuid_bytes(u) -> bytes:
    return bytes(u.uuid if isinstance(u, UUID) else u)


def norm_angle(a: float) -> float:
    return math.atan2(math.sin(a), math.cos(a))


def resolve(namespace: str, name: str) -> str:
    """A relative ROS name in `namespace` as an absolute name (`/tb3_1` + `odom` = `/tb3_1/odom`)."""
    ns = namespace.rstrip("/")
    return f"{ns}/{name}"


def covariance(diag):
    c = [0.0] * 36
    for i, v in enumerate(diag):
        c[i * 7] = v
    return c


# --------------------------------------------------------------------------------------------
# The robot
# --------------------------------------------------------------------------------------------


@dataclass
class Goal:
    gid: bytes
    accepted_at: float
    frame_id: str
    x: float
    y: float
    z: float
    yaw: float
    behavior_tree: str
    status: int = STATUS_EXECUTING
    started_at: float = 0.0
    ended_at: Optional[float] = None
    cancel_at: Optional[float] = None  # CANCELING since; CANCELED once past the delay
    error_code: int = 0
    error_msg: str = ""
    end_reason: str = ""
    last_distance: float = 0.0

    def as_json(self):
        return {
            "goal_id": self.gid.hex(),
            "t": self.accepted_at,
            "frame_id": self.frame_id,
            "x": self.x,
            "y": self.y,
            "z": self.z,
            "yaw": self.yaw,
            "behavior_tree": self.behavior_tree,
            "status": self.status,
            "status_name": STATUS_NAMES.get(self.status, str(self.status)),
            "ended_at": self.ended_at,
            "error_code": self.error_code,
            "error_msg": self.error_msg,
            "end_reason": self.end_reason,
            "distance_remaining": self.last_distance,
        }


DEFAULT_MODE = {
    "outcome": "succeed",  # or "abort"
    "drive_speed": 1.0,  # m/s; 0 = the goal never ends by itself
    "abort_after_s": 1.0,  # with outcome abort: driving time before the goal aborts
    "error_code": NAV2_ERROR_UNKNOWN,
    "error_msg": "fake_robot: navigation aborted (mode outcome=abort)",
    "accept": True,  # false: goals are rejected
}

CANCEL_DELAY_S = 0.05


class FakeRobot:
    def __init__(self, args):
        self.args = args
        self.namespace = args.namespace if args.namespace else "/"
        if not self.namespace.startswith("/"):
            self.namespace = "/" + self.namespace
        if len(self.namespace) > 1:
            self.namespace = self.namespace.rstrip("/")
        self.node_name = args.node_name
        self.distro = args.distro
        self.types = distro_types(self.distro)
        self.domain = int(os.environ.get("ROS_DOMAIN_ID", "0") or "0")
        self.lock = threading.Lock()
        self.stop = threading.Event()

        # Robot state: the map pose; odom's origin is the start pose (map <- odom fixed), so
        # odometry and AMCL agree exactly.
        self.x, self.y, self.yaw = args.start
        self.map_odom = tuple(args.start)
        self.v = 0.0
        self.w = 0.0
        self.battery = args.battery
        self.mode = dict(DEFAULT_MODE)

        self.goals: dict[bytes, Goal] = {}
        self.goal_order: list[bytes] = []
        self.current: Optional[bytes] = None
        self.cancels: list = []
        self.cmd_vel: list = []
        self.pending_results: list = []  # (goal id, (client_guid, seq), participant key)
        self.pending_replies: list = []  # [writer, sample, participant key, deadline, what]
        self.status_dirty = True

        self._make_entities()

    # ---- DDS entities ------------------------------------------------------------------
    def _topic(self, kind: str, name: str, typ):
        """DDS topic for ROS name `name` (relative to the namespace): kind rt, rq or rr."""
        full = resolve(self.namespace, name)
        suffix = {"rt": "", "rq": "Request", "rr": "Reply"}[kind]
        topic_name = f"{kind}{full}{suffix}"
        return Topic(self.dp, topic_name, typ)

    def _make_entities(self):
        T = self.types
        self.dp = DomainParticipant(self.domain, qos=Qos(Policy.Userdata(data=b"enclave=/;")))
        self.writers = {}
        self.readers = {}

        def writer(key, kind, name, typ, qos):
            self.writers[key] = DataWriter(self.dp, self._topic(kind, name, typ), qos=qos)

        def reader(key, kind, name, typ, qos):
            self.readers[key] = DataReader(self.dp, self._topic(kind, name, typ), qos=qos)

        act = "navigate_to_pose/_action/"
        writer("odom", "rt", "odom", Odometry, qos_default())
        writer("amcl_pose", "rt", "amcl_pose", PoseWithCovarianceStamped, qos_latched(1))
        writer("battery_state", "rt", "battery_state", BatteryState, qos_default())
        reader("cmd_vel", "rt", "cmd_vel", Twist, qos_default())
        reader("send_goal", "rq", act + "send_goal", NavigateToPose_SendGoal_Request, qos_default())
        writer("send_goal", "rr", act + "send_goal", NavigateToPose_SendGoal_Response, qos_default())
        reader("cancel_goal", "rq", act + "cancel_goal", CancelGoal_Request, qos_default())
        writer("cancel_goal", "rr", act + "cancel_goal", CancelGoal_Response, qos_default())
        reader("get_result", "rq", act + "get_result", NavigateToPose_GetResult_Request, qos_default())
        writer("get_result", "rr", act + "get_result", T["GetResult_Response"], qos_default())
        writer("feedback", "rt", act + "feedback", NavigateToPose_FeedbackMessage, qos_default())
        writer("status", "rt", act + "status", GoalStatusArray, qos_latched(1))

        # ros_discovery_info: participant-level, not listed under the node (as rmw does).
        user_data = None
        if self.distro != "humble":
            user_data = f"typehash={ROS_DISCOVERY_INFO_TYPE_HASH};".encode()
        self.disco_topic = Topic(self.dp, "ros_discovery_info", T["ParticipantEntitiesInfo"])
        self.disco_writer = DataWriter(self.dp, self.disco_topic, qos=qos_latched(1, user_data))

    def gid(self, entity) -> list:
        raw = entity.guid.bytes
        return list(raw) + [0] * (self.types["gid_len"] - 16)

    def discovery_info(self):
        T = self.types
        node = T["NodeEntitiesInfo"](
            node_namespace=self.namespace,
            node_name=self.node_name,
            reader_gid_seq=[T["Gid"](data=self.gid(r)) for r in self.readers.values()],
            writer_gid_seq=[T["Gid"](data=self.gid(w)) for w in self.writers.values()],
        )
        return T["ParticipantEntitiesInfo"](
            gid=T["Gid"](data=self.gid(self.dp)), node_entities_info_seq=[node]
        )

    def describe_entities(self):
        out = []
        for key, r in self.readers.items():
            out.append(("reader", key, r.topic.name, r.topic.typename, r.guid.hex))
        for key, w in self.writers.items():
            out.append(("writer", key, w.topic.name, w.topic.typename, w.guid.hex))
        return out

    # ---- poses ---------------------------------------------------------------------------
    def odom_pose(self):
        ox, oy, oyaw = self.map_odom
        dx, dy = self.x - ox, self.y - oy
        c, s = math.cos(-oyaw), math.sin(-oyaw)
        return (c * dx - s * dy, s * dx + c * dy, norm_angle(self.yaw - oyaw))

    def publish_odom(self, now):
        x, y, yaw = self.odom_pose()
        msg = Odometry(
            header=Header(stamp=ros_time(now), frame_id="odom"),
            child_frame_id="base_footprint",
            pose=PoseWithCovariance(
                pose=Pose(position=Point(x=x, y=y, z=0.0), orientation=yaw_to_quaternion(yaw)),
                covariance=covariance([1e-3, 1e-3, 1e-6, 1e-6, 1e-6, 1e-3]),
            ),
            twist=TwistWithCovariance(
                twist=Twist(linear=Vector3(x=self.v), angular=Vector3(z=self.w)),
                covariance=covariance([1e-3, 1e-3, 1e-6, 1e-6, 1e-6, 1e-3]),
            ),
        )
        self.writers["odom"].write(msg)

    def amcl_msg(self, now):
        return PoseWithCovarianceStamped(
            header=Header(stamp=ros_time(now), frame_id="map"),
            pose=PoseWithCovariance(
                pose=Pose(
                    position=Point(x=self.x, y=self.y, z=0.0),
                    orientation=yaw_to_quaternion(self.yaw),
                ),
                covariance=covariance([0.01, 0.01, 0.0, 0.0, 0.0, 0.005]),
            ),
        )

    def publish_battery(self, now):
        pct = float(self.battery)
        msg = BatteryState(
            header=Header(stamp=ros_time(now), frame_id="base_link"),
            voltage=12.3,
            temperature=25.0,
            current=-1.2,
            charge=3.0 * pct,
            capacity=3.0,
            design_capacity=3.3,
            percentage=pct,
            power_supply_status=2,  # DISCHARGING
            power_supply_health=1,  # GOOD
            power_supply_technology=2,  # LION
            present=True,
            cell_voltage=[4.1, 4.1, 4.1],
            cell_temperature=[25.0, 25.0, 25.0],
            location="base",
            serial_number="FAKE-0001",
        )
        self.writers["battery_state"].write(msg)

    # ---- action server ---------------------------------------------------------------------
    def _requester(self, reader, sample):
        """Participant key of the writer that sent `sample` (to wait for its reply reader)."""
        try:
            ep = reader.get_matched_publication_data(sample.sample_info.publication_handle)
            return ep.participant_key if ep is not None else None
        except Exception:  # noqa: BLE001 - best effort, the reply is sent anyway
            return None

    def reply(self, key, sample, participant_key, what):
        """Queue a reply; it is written once the requester's reply reader is matched (as
        rmw_cyclonedds waits for it), or after 2 s anyway."""
        self.pending_replies.append([self.writers[key], sample, participant_key,
                                     time.monotonic() + 2.0, what])

    def flush_replies(self):
        keep = []
        for entry in self.pending_replies:
            writer, sample, pkey, deadline, what = entry
            ready = pkey is None
            if not ready:
                try:
                    for h in writer.get_matched_subscriptions():
                        d = writer.get_matched_subscription_data(h)
                        if d is not None and d.participant_key == pkey:
                            ready = True
                            break
                except Exception:  # noqa: BLE001
                    ready = True
            if ready or time.monotonic() > deadline:
                if not ready:
                    log(f"WARNING: {what}: no matched reply reader of the requester after 2 s; "
                        "replying anyway")
                writer.write(sample)
            else:
                keep.append(entry)
        self.pending_replies = keep

    def publish_status(self, now):
        items = []
        for gid in self.goal_order[-20:]:
            g = self.goals[gid]
            if g.status == STATUS_UNKNOWN:  # rejected goals are never listed
                continue
            items.append(GoalStatus(
                goal_info=GoalInfo(goal_id=UUID(uuid=list(gid)), stamp=ros_time(g.accepted_at)),
                status=g.status,
            ))
        self.writers["status"].write(GoalStatusArray(status_list=items))
        self.status_dirty = False

    def end_goal(self, g: Goal, status: int, now: float, reason: str,
                 error_code: int = 0, error_msg: str = ""):
        g.status = status
        g.ended_at = now
        g.end_reason = reason
        g.error_code = error_code
        g.error_msg = error_msg
        if self.current == g.gid:
            self.current = None
            self.v = 0.0
            self.w = 0.0
        self.status_dirty = True
        log(f"goal {g.gid.hex()} ended {STATUS_NAMES[status]} ({reason})"
            + (f" error_code={error_code} error_msg={error_msg!r}" if status == STATUS_ABORTED
               and (error_code or error_msg) else ""))
        self.answer_results(g)

    def result_response(self, header, g: Optional[Goal]):
        T = self.types
        if g is None:
            status, code, msg = STATUS_UNKNOWN, 0, ""
        else:
            status, code, msg = g.status, g.error_code, g.error_msg
        return T["GetResult_Response"](
            client_guid=header[0], sequence_number=header[1], status=status,
            result=T["make_result"](code, msg),
        )

    def answer_results(self, g: Goal):
        keep = []
        for gid, header, pkey in self.pending_results:
            if gid == g.gid:
                self.reply("get_result", self.result_response(header, g), pkey,
                           f"get_result {gid.hex()}")
                log(f"get_result {gid.hex()} answered: {STATUS_NAMES[g.status]}")
            else:
                keep.append((gid, header, pkey))
        self.pending_results = keep

    def on_send_goal(self, req, pkey, now):
        gid = uuid_bytes(req.goal_id)
        ps = req.goal.pose
        yaw = quaternion_to_yaw(ps.pose.orientation)
        with self.lock:
            accept = bool(self.mode.get("accept", True))
            g = Goal(
                gid=gid, accepted_at=now, frame_id=ps.header.frame_id,
                x=ps.pose.position.x, y=ps.pose.position.y, z=ps.pose.position.z, yaw=yaw,
                behavior_tree=req.goal.behavior_tree, started_at=now,
                status=STATUS_EXECUTING if accept else STATUS_UNKNOWN,
            )
            log(f"send_goal {gid.hex()}: frame={g.frame_id!r} x={g.x:.3f} y={g.y:.3f} "
                f"yaw={g.yaw:.3f} behavior_tree={g.behavior_tree!r} -> "
                f"{'accepted' if accept else 'REJECTED'} (request {req.client_guid:016x}/"
                f"{req.sequence_number})")
            if gid in self.goals:
                log(f"WARNING: goal id {gid.hex()} seen before")
            else:
                self.goal_order.append(gid)
            self.goals[gid] = g
            if not accept:
                g.ended_at = now
                g.end_reason = "rejected"
            self.reply("send_goal", NavigateToPose_SendGoal_Response(
                client_guid=req.client_guid, sequence_number=req.sequence_number,
                accepted=accept, stamp=ros_time(now)), pkey, f"send_goal {gid.hex()}")
            if not accept:
                return
            if self.current is not None and self.current != gid:
                old = self.goals[self.current]
                # Nav2 (SimpleActionServer::accept_pending_goal): the running goal is aborted
                # with an empty result when a new one is accepted.
                self.end_goal(old, STATUS_ABORTED, now, f"preempted by {gid.hex()}")
            self.current = gid
            g.last_distance = math.hypot(g.x - self.x, g.y - self.y)
            self.status_dirty = True

    def on_get_result(self, req, pkey):
        gid = uuid_bytes(req.goal_id)
        header = (req.client_guid, req.sequence_number)
        with self.lock:
            g = self.goals.get(gid)
            if g is None or g.status in TERMINAL or g.status == STATUS_UNKNOWN:
                log(f"get_result {gid.hex()}: answered at once "
                    f"({STATUS_NAMES[g.status] if g else 'unknown goal'})")
                self.reply("get_result", self.result_response(header, g), pkey,
                           f"get_result {gid.hex()}")
            else:
                log(f"get_result {gid.hex()}: held until the goal ends")
                self.pending_results.append((gid, header, pkey))

    def on_cancel_goal(self, req, pkey, now):
        gid = uuid_bytes(req.goal_info.goal_id)
        st = req.goal_info.stamp
        stamp = st.sec + st.nanosec * 1e-9
        zero_id = gid == bytes(16)
        with self.lock:
            canceling = []
            code = CANCEL_ERROR_NONE
            cancelable = (STATUS_ACCEPTED, STATUS_EXECUTING)
            if not zero_id:
                g = self.goals.get(gid)
                if g is None or g.status == STATUS_UNKNOWN:
                    code = CANCEL_ERROR_UNKNOWN_GOAL_ID
                elif g.status in TERMINAL:
                    code = CANCEL_ERROR_GOAL_TERMINATED
                elif g.status in cancelable:
                    canceling.append(g)
            if zero_id and stamp == 0.0:
                canceling = [self.goals[k] for k in self.goal_order
                             if self.goals[k].status in cancelable]
            elif stamp != 0.0 and code == CANCEL_ERROR_NONE:
                for k in self.goal_order:
                    g = self.goals[k]
                    if g.status in cancelable and g.accepted_at <= stamp and g not in canceling:
                        canceling.append(g)
            if code == CANCEL_ERROR_NONE and not canceling:
                code = CANCEL_ERROR_REJECTED
            for g in canceling:
                g.status = STATUS_CANCELING
                g.cancel_at = now
            if canceling:
                self.status_dirty = True
            ids = [g.gid.hex() for g in canceling]
            self.cancels.append({
                "t": now, "goal_id": gid.hex(), "stamp": stamp, "return_code": code,
                "goals_canceling": ids,
            })
            log(f"cancel_goal goal_id={gid.hex()} stamp={stamp:.3f}: return_code={code} "
                f"canceling={ids}")
            self.reply("cancel_goal", CancelGoal_Response(
                client_guid=req.client_guid, sequence_number=req.sequence_number,
                return_code=code,
                goals_canceling=[GoalInfo(goal_id=UUID(uuid=list(g.gid)),
                                          stamp=ros_time(g.accepted_at)) for g in canceling],
            ), pkey, f"cancel_goal {gid.hex()}")

    def on_cmd_vel(self, msg, now):
        entry = {
            "t": now,
            "linear": {"x": msg.linear.x, "y": msg.linear.y, "z": msg.linear.z},
            "angular": {"x": msg.angular.x, "y": msg.angular.y, "z": msg.angular.z},
        }
        with self.lock:
            self.cmd_vel.append(entry)
            if len(self.cmd_vel) > 100000:
                del self.cmd_vel[:50000]
            n = len(self.cmd_vel)
        if n <= 3 or n % 50 == 0:
            log(f"cmd_vel #{n}: linear.x={msg.linear.x:.3f} angular.z={msg.angular.z:.3f}")

    # ---- simulation ------------------------------------------------------------------------
    def step(self, now, dt):
        with self.lock:
            for gid in list(self.goal_order):
                g = self.goals[gid]
                if g.status == STATUS_CANCELING and now - g.cancel_at >= CANCEL_DELAY_S:
                    self.end_goal(g, STATUS_CANCELED, now, "cancel requested")
            if self.current is None:
                self.v = self.w = 0.0
                return
            g = self.goals[self.current]
            if g.status != STATUS_EXECUTING:
                self.v = self.w = 0.0
                return
            speed = max(0.0, float(self.mode.get("drive_speed", 1.0)))
            dx, dy = g.x - self.x, g.y - self.y
            dist = math.hypot(dx, dy)
            step = speed * dt
            if dist <= max(step, 1e-9):
                self.x, self.y = g.x, g.y
                old_yaw = self.yaw
                self.yaw = g.yaw
                self.v = 0.0
                self.w = norm_angle(self.yaw - old_yaw) / dt if dt > 0 else 0.0
                dist = 0.0
            elif step > 0:
                heading = math.atan2(dy, dx)
                self.w = norm_angle(heading - self.yaw) / dt if dt > 0 else 0.0
                self.yaw = heading
                self.x += step * math.cos(heading)
                self.y += step * math.sin(heading)
                self.v = speed
                dist = math.hypot(g.x - self.x, g.y - self.y)
            else:
                self.v = self.w = 0.0
            g.last_distance = dist
            outcome = self.mode.get("outcome", "succeed")
            if outcome == "abort" and now - g.started_at >= float(self.mode.get("abort_after_s", 1.0)):
                self.end_goal(g, STATUS_ABORTED, now, "mode outcome=abort",
                              int(self.mode.get("error_code", NAV2_ERROR_UNKNOWN)),
                              str(self.mode.get("error_msg", "")))
            elif dist == 0.0:
                if outcome == "abort":
                    self.end_goal(g, STATUS_ABORTED, now, "mode outcome=abort (arrived)",
                                  int(self.mode.get("error_code", NAV2_ERROR_UNKNOWN)),
                                  str(self.mode.get("error_msg", "")))
                else:
                    self.end_goal(g, STATUS_SUCCEEDED, now, "arrived")

    def publish_feedback(self, now):
        with self.lock:
            if self.current is None:
                return
            g = self.goals[self.current]
            if g.status != STATUS_EXECUTING:
                return
            speed = max(1e-6, float(self.mode.get("drive_speed", 1.0)))
            msg = NavigateToPose_FeedbackMessage(
                goal_id=UUID(uuid=list(g.gid)),
                feedback=NavigateToPose_Feedback(
                    current_pose=PoseStamped(
                        header=Header(stamp=ros_time(now), frame_id="map"),
                        pose=Pose(position=Point(x=self.x, y=self.y),
                                  orientation=yaw_to_quaternion(self.yaw)),
                    ),
                    navigation_time=ros_duration(now - g.started_at),
                    estimated_time_remaining=ros_duration(min(g.last_distance / speed, 1e6)),
                    number_of_recoveries=0,
                    distance_remaining=g.last_distance,
                ),
            )
        self.writers["feedback"].write(msg)

    # ---- main loop -------------------------------------------------------------------------
    def take(self, key):
        try:
            return self.readers[key].take(N=64)
        except Exception as e:  # noqa: BLE001
            log(f"ERROR taking {key}: {e}")
            return []

    def run(self):
        period = {"odom": 0.05, "amcl": 0.2, "battery": 1.0, "feedback": 0.1, "disco": 1.0}
        due = {k: 0.0 for k in period}
        last = time.time()
        while not self.stop.is_set():
            now = time.time()
            dt = min(max(now - last, 0.0), 0.2)
            last = now
            for s in self.take("cmd_vel"):
                if s.sample_info.valid_data:
                    self.on_cmd_vel(s, now)
            for s in self.take("send_goal"):
                if s.sample_info.valid_data:
                    self.on_send_goal(s, self._requester(self.readers["send_goal"], s), now)
            for s in self.take("cancel_goal"):
                if s.sample_info.valid_data:
                    self.on_cancel_goal(s, self._requester(self.readers["cancel_goal"], s), now)
            for s in self.take("get_result"):
                if s.sample_info.valid_data:
                    self.on_get_result(s, self._requester(self.readers["get_result"], s))
            self.step(now, dt)
            with self.lock:
                if self.status_dirty:
                    self.publish_status(now)
                self.flush_replies()
            if now >= due["odom"]:
                with self.lock:
                    self.publish_odom(now)
                due["odom"] = now + period["odom"]
            if now >= due["amcl"]:
                with self.lock:
                    msg = self.amcl_msg(now)
                self.writers["amcl_pose"].write(msg)
                due["amcl"] = now + period["amcl"]
            if now >= due["battery"]:
                with self.lock:
                    self.publish_battery(now)
                due["battery"] = now + period["battery"]
            if now >= due["feedback"]:
                self.publish_feedback(now)
                due["feedback"] = now + period["feedback"]
            if now >= due["disco"]:
                self.disco_writer.write(self.discovery_info())
                due["disco"] = now + period["disco"]
            self.stop.wait(0.01)

    # ---- control API -------------------------------------------------------------------------
    def state_json(self):
        with self.lock:
            ox, oy, oyaw = self.odom_pose()
            cur = self.goals[self.current].as_json() if self.current else None
            return {
                "node": resolve(self.namespace, self.node_name),
                "namespace": self.namespace,
                "distro": self.distro,
                "domain": self.domain,
                "pose": {"x": self.x, "y": self.y, "yaw": self.yaw, "frame": "map"},
                "odom_pose": {"x": ox, "y": oy, "yaw": oyaw, "frame": "odom"},
                "velocity": {"linear": self.v, "angular": self.w},
                "battery": self.battery,
                "goal": cur,
                "mode": dict(self.mode),
                "counts": {"goals": len(self.goal_order), "cancels": len(self.cancels),
                           "cmd_vel": len(self.cmd_vel)},
            }

    def set_mode(self, body):
        allowed = set(DEFAULT_MODE) | {"battery"}
        unknown = set(body) - allowed
        if unknown:
            raise ValueError(f"unknown mode keys: {sorted(unknown)}")
        if "outcome" in body and body["outcome"] not in ("succeed", "abort"):
            raise ValueError("outcome must be succeed or abort")
        with self.lock:
            for k, v in body.items():
                if k == "battery":
                    self.battery = float(v)
                else:
                    self.mode[k] = v
            log(f"mode: {self.mode} battery={self.battery}")
            return dict(self.mode)

    def reset(self):
        """Forget every record; a running (or canceling) goal ends first, ABORTED, and its
        held get_result is answered."""
        with self.lock:
            now = time.time()
            for gid in list(self.goal_order):
                g = self.goals[gid]
                if g.status not in TERMINAL and g.status != STATUS_UNKNOWN:
                    self.end_goal(g, STATUS_ABORTED, now, "reset")
            self.goals = {}
            self.goal_order = []
            self.pending_results = []
            self.current = None
            self.cancels = []
            self.cmd_vel = []
            self.mode = dict(DEFAULT_MODE)
            self.battery = self.args.battery
            self.status_dirty = True
            log("reset")


def make_handler(robot: FakeRobot):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt, *args):  # quiet
            pass

        def _send(self, code, obj):
            body = json.dumps(obj).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _body(self):
            n = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(n) if n else b""
            return json.loads(raw) if raw.strip() else {}

        def do_GET(self):
            path = self.path.split("?")[0].rstrip("/") or "/"
            if path == "/goals":
                with robot.lock:
                    out = [robot.goals[k].as_json() for k in robot.goal_order]
                self._send(200, out)
            elif path == "/cancels":
                with robot.lock:
                    out = list(robot.cancels)
                self._send(200, out)
            elif path == "/cmd_vel":
                with robot.lock:
                    out = list(robot.cmd_vel)
                self._send(200, out)
            elif path in ("/state", "/"):
                self._send(200, robot.state_json())
            elif path == "/entities":
                self._send(200, [dict(zip(("kind", "key", "topic", "type", "guid"), e))
                                 for e in robot.describe_entities()])
            else:
                self._send(404, {"error": f"no route {path}"})

        def do_POST(self):
            path = self.path.split("?")[0].rstrip("/")
            try:
                body = self._body()
                if path == "/mode":
                    self._send(200, robot.set_mode(body))
                elif path == "/reset":
                    robot.reset()
                    self._send(200, {"ok": True})
                elif path == "/pose":
                    with robot.lock:
                        robot.x = float(body["x"])
                        robot.y = float(body["y"])
                        robot.yaw = float(body.get("yaw", 0.0))
                    self._send(200, {"ok": True})
                else:
                    self._send(404, {"error": f"no route {path}"})
            except (ValueError, KeyError, TypeError) as e:
                self._send(400, {"error": str(e)})

    return Handler


def parse_pose(s: str):
    parts = [float(p) for p in s.split(",")]
    if len(parts) != 3:
        raise argparse.ArgumentTypeError("expected x,y,yaw")
    return tuple(parts)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--namespace", default="", help="ROS namespace, e.g. /tb3_1 (default: root)")
    ap.add_argument("--distro", choices=("jazzy", "humble"), default="jazzy",
                    help="wire layout: jazzy (16-byte GIDs, Jazzy NavigateToPose result) or "
                         "humble (24-byte GIDs, std_msgs/Empty result)")
    ap.add_argument("--control-port", type=int, default=0,
                    help="HTTP control port on 127.0.0.1 (0: pick a free one)")
    ap.add_argument("--node-name", default="fake_robot")
    ap.add_argument("--start", type=parse_pose, default=(1.5, -0.5, 0.3),
                    help="start pose in map: x,y,yaw (also odom's origin)")
    ap.add_argument("--battery", type=float, default=0.87, help="BatteryState.percentage (0-1)")
    args = ap.parse_args(argv)

    robot = FakeRobot(args)
    httpd = ThreadingHTTPServer(("127.0.0.1", args.control_port), make_handler(robot))
    httpd.daemon_threads = True
    port = httpd.server_address[1]
    threading.Thread(target=httpd.serve_forever, name="control-http", daemon=True).start()

    def on_signal(signum, _frame):
        log(f"signal {signum}: stopping")
        robot.stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    log(f"node {resolve(robot.namespace, robot.node_name)} on domain {robot.domain}, "
        f"distro {robot.distro} ({robot.types['gid_len']}-byte GIDs), participant "
        f"{robot.dp.guid.hex}, start pose {args.start}")
    for kind, key, topic, typ, guid in robot.describe_entities():
        log(f"  {kind:6s} {topic:45s} {typ}  gid={guid}")
    print(f"fake_robot ready: control http://127.0.0.1:{port}", flush=True)
    try:
        robot.run()
    finally:
        httpd.shutdown()
        log("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
