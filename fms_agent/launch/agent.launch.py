"""Launch one fms robot agent (fms_agent) for a robot that runs ROS 2 and Nav2.

    ros2 launch fms_agent agent.launch.py robot_id:=tb3_1
    ros2 launch fms_agent agent.launch.py namespace:=robot1 use_sim_time:=true
    ros2 launch fms_agent agent.launch.py robot_id:=robot-001 interface:=mock \\
        zenoh_endpoint:=tcp/fms.example.org:7447

The node is named fms_agent and runs in the robot's namespace, so its relative topic names
(odom, amcl_pose, battery_state, cmd_vel, navigate_to_pose) resolve to that robot's topics.
Parameters come from params_file (default: the installed config/fms_agent.params.yaml).
ROS_DOMAIN_ID is taken from the environment as usual.
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

NAME_CHARS = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_'


def ros_name(text):
    """Turn a robot id into a valid ROS name token.

    Robot ids may contain '-' (robot-001) but ROS names may not, and a token
    must not start with a digit.
    """
    name = ''.join(c if c in NAME_CHARS else '_' for c in text.strip('/'))
    if not name or name[0].isdigit():
        name = 'r_' + name
    return name


def is_true(text):
    return text.strip().lower() in ('true', '1', 'yes', 'on')


def launch_agent(context, *args, **kwargs):
    robot_id = LaunchConfiguration('robot_id').perform(context).strip()
    namespace = LaunchConfiguration('namespace').perform(context).strip().strip('/')
    if not namespace:
        if not robot_id:
            raise RuntimeError('give robot_id:=<id> or namespace:=<ns> (the id defaults to it)')
        namespace = ros_name(robot_id)
    arguments = [
        '--zenoh-endpoint', LaunchConfiguration('zenoh_endpoint').perform(context),
        '--interface', LaunchConfiguration('interface').perform(context),
        '--log-level', LaunchConfiguration('log_level').perform(context),
    ]
    if robot_id:
        arguments += ['--robot-id', robot_id]
    rate = LaunchConfiguration('rate').perform(context).strip()
    if rate:
        arguments += ['--rate', rate]
    config = LaunchConfiguration('config').perform(context).strip()
    if config:
        arguments += ['--config', config]
    parameters = []
    params_file = LaunchConfiguration('params_file').perform(context).strip()
    if params_file:
        parameters.append(params_file)
    parameters.append({'use_sim_time': is_true(LaunchConfiguration('use_sim_time').perform(context))})
    return [
        Node(
            package='fms_agent',
            executable='fms_agent',
            name='fms_agent',
            namespace=namespace,
            arguments=arguments,
            parameters=parameters,
            output='screen',
            emulate_tty=True,
        )
    ]


def generate_launch_description():
    share = get_package_share_directory('fms_agent')
    return LaunchDescription([
        DeclareLaunchArgument(
            'robot_id', default_value='',
            description='Fleet id of this robot, e.g. tb3_1 or robot-001 (default: the namespace)'),
        DeclareLaunchArgument(
            'namespace', default_value='',
            description='ROS namespace of the robot; empty means the robot id '
                        "(with characters ROS names forbid, such as '-', made '_')"),
        DeclareLaunchArgument(
            'interface', default_value='ros2',
            choices=['mock', 'ros2', 'ros2dds'],
            description='Robot backend (ros2 needs fms_agent built with --features ros2)'),
        DeclareLaunchArgument(
            'zenoh_endpoint', default_value='tcp/127.0.0.1:7447',
            description='Zenoh router to connect to (fms_server embeds one)'),
        DeclareLaunchArgument(
            'use_sim_time', default_value='false',
            description='Set use_sim_time on the node (Gazebo)'),
        DeclareLaunchArgument(
            'params_file',
            default_value=os.path.join(share, 'config', 'fms_agent.params.yaml'),
            description='ROS parameters file (topic names, rate, ...); empty for none'),
        DeclareLaunchArgument(
            'config', default_value='',
            description='Optional agent TOML file (config/agent.toml); parameters override it'),
        DeclareLaunchArgument(
            'rate', default_value='',
            description='State messages per second (default: the parameters file, else 5)'),
        DeclareLaunchArgument(
            'log_level', default_value='info',
            description='error, warn, info, debug or trace'),
        OpaqueFunction(function=launch_agent),
    ])
