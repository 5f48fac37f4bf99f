"""Launch the fms fleet server (fms_server) with its embedded Zenoh router.

    ros2 launch fms_agent server.launch.py
    ros2 launch fms_agent server.launch.py port:=9000 data_dir:=/var/lib/fms

fms_server needs no ROS; it is started from here so that one `ros2 launch` can bring up a
whole simulated fleet (see fleet_sim.launch.py). Robots connect to zenoh_listen.
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node


def launch_server(context, *args, **kwargs):
    arguments = [
        '--port', LaunchConfiguration('port').perform(context),
        '--zenoh-listen', LaunchConfiguration('zenoh_listen').perform(context),
        '--log-level', LaunchConfiguration('log_level').perform(context),
    ]
    for name in ('config', 'data_dir', 'frontend_dir'):
        value = LaunchConfiguration(name).perform(context).strip()
        if value:
            arguments += ['--' + name.replace('_', '-'), value]
    return [
        Node(
            package='fms_server',
            executable='fms_server',
            name='fms_server',
            arguments=arguments,
            output='screen',
            emulate_tty=True,
        )
    ]


def generate_launch_description():
    return LaunchDescription([
        DeclareLaunchArgument(
            'port', default_value='8088',
            description='HTTP port: REST API, WebSocket and dashboard'),
        DeclareLaunchArgument(
            'zenoh_listen', default_value='tcp/0.0.0.0:7447',
            description='Where the embedded Zenoh router listens for robots'),
        DeclareLaunchArgument(
            'config', default_value='',
            description='Optional server TOML file (config/server.toml)'),
        DeclareLaunchArgument(
            'data_dir', default_value='',
            description='Where the task store lives (default: the server default)'),
        DeclareLaunchArgument(
            'frontend_dir', default_value='',
            description='Dashboard files to serve (default: the server default)'),
        DeclareLaunchArgument(
            'log_level', default_value='info',
            description='error, warn, info, debug or trace'),
        OpaqueFunction(function=launch_server),
    ])
