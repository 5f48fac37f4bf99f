"""Launch one fms robot agent.

    ros2 launch fms_agent agent.launch.py robot_id:=tb3_1
    ros2 launch fms_agent agent.launch.py robot_id:=robot-001 interface:=mock \
        zenoh_endpoint:=tcp/fms.example.org:7447

The agent is a Rust binary (fms_agent); launch_ros appends
``--ros-args -r __node:=fms_agent -r __ns:=/<namespace>``, which the agent
parses. ROS_DOMAIN_ID is taken from the environment as usual.
"""

import re

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node


def ros_name(text):
    """Turn a robot id into a valid ROS name token.

    Robot ids may contain '-' (robot-001) but ROS names may not, and a token
    must not start with a digit.
    """
    name = re.sub(r'[^A-Za-z0-9_]', '_', text.strip('/'))
    if not name or name[0].isdigit():
        name = 'r_' + name
    return name


def launch_agent(context, *args, **kwargs):
    robot_id = LaunchConfiguration('robot_id').perform(context)
    namespace = LaunchConfiguration('namespace').perform(context) or ros_name(robot_id)
    return [
        Node(
            package='fms_agent',
            executable='fms_agent',
            name='fms_agent',
            namespace=namespace,
            arguments=[
                '--robot-id', robot_id,
                '--zenoh-endpoint', LaunchConfiguration('zenoh_endpoint'),
                '--interface', LaunchConfiguration('interface'),
                '--rate', LaunchConfiguration('rate'),
                '--log-level', LaunchConfiguration('log_level'),
            ],
            output='screen',
            emulate_tty=True,
        )
    ]


def generate_launch_description():
    return LaunchDescription([
        DeclareLaunchArgument(
            'robot_id',
            description='Fleet id of this robot (required), e.g. tb3_1 or robot-001'),
        DeclareLaunchArgument(
            'zenoh_endpoint', default_value='tcp/127.0.0.1:7447',
            description='Zenoh router to connect to'),
        DeclareLaunchArgument(
            'interface', default_value='ros2',
            choices=['mock', 'ros2', 'ros2dds'],
            description='Robot backend'),
        DeclareLaunchArgument(
            'namespace', default_value='',
            description='ROS namespace of the robot; empty means the robot id '
                        "(with characters ROS names forbid, such as '-', made '_')"),
        DeclareLaunchArgument(
            'rate', default_value='5.0',
            description='State messages per second'),
        DeclareLaunchArgument(
            'log_level', default_value='info',
            description='error, warn, info, debug or trace'),
        OpaqueFunction(function=launch_agent),
    ])
