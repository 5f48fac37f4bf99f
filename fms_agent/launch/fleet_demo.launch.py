"""Launch a demo fleet of simulated (mock) fms agents, no robot hardware needed.

    ros2 launch fms_agent fleet_demo.launch.py count:=5

Start fms_server first (its embedded Zenoh router listens on 7447). Robots are
named robot-001 ... robot-NNN, each in its own namespace (robot_001, ...),
and start two metres apart along the y axis.
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node


def launch_fleet(context, *args, **kwargs):
    raw = LaunchConfiguration('count').perform(context)
    try:
        count = int(raw)
    except ValueError:
        raise RuntimeError(f"count must be a whole number, got '{raw}'") from None
    if not 1 <= count <= 999:
        raise RuntimeError(f'count must be between 1 and 999, got {count}')
    prefix = LaunchConfiguration('id_prefix').perform(context)
    # ROS names allow only [A-Za-z0-9_] and must not start with a digit.
    ns_prefix = ''.join(c if c.isascii() and (c.isalnum() or c == '_') else '_' for c in prefix)
    if not ns_prefix or ns_prefix[0].isdigit():
        ns_prefix = 'r_' + ns_prefix

    nodes = []
    for i in range(1, count + 1):
        robot_id = f'{prefix}-{i:03d}'
        nodes.append(Node(
            package='fms_agent',
            executable='fms_agent',
            name='fms_agent',
            namespace=f'{ns_prefix}_{i:03d}',
            arguments=[
                '--robot-id', robot_id,
                '--zenoh-endpoint', LaunchConfiguration('zenoh_endpoint'),
                '--interface', 'mock',
                '--rate', LaunchConfiguration('rate'),
                '--start-pose', f'0.0,{2.0 * (i - 1):.1f},0.0',
                '--log-level', LaunchConfiguration('log_level'),
            ],
            output='screen',
            emulate_tty=True,
        ))
    return nodes


def generate_launch_description():
    return LaunchDescription([
        DeclareLaunchArgument(
            'count', default_value='3',
            description='Number of simulated robots (1-999)'),
        DeclareLaunchArgument(
            'id_prefix', default_value='robot',
            description='Robot ids are <id_prefix>-001, <id_prefix>-002, ...'),
        DeclareLaunchArgument(
            'zenoh_endpoint', default_value='tcp/127.0.0.1:7447',
            description='Zenoh router to connect to'),
        DeclareLaunchArgument(
            'rate', default_value='5.0',
            description='State messages per second, per robot'),
        DeclareLaunchArgument(
            'log_level', default_value='info',
            description='error, warn, info, debug or trace'),
        OpaqueFunction(function=launch_fleet),
    ])
