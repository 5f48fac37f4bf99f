"""Launch a simulated fleet: N TurtleBot3 robots in Gazebo, each with Nav2 and one fms_agent
in its own namespace, plus fms_server once.

    ros2 launch fms_agent fleet_sim.launch.py count:=3

Needs nav2_bringup (with its TurtleBot3 simulation: Gazebo Classic on Humble, Gazebo on
Jazzy) and fms_agent built with the ros2 feature (docs/ros2.md). Robot i is in namespace
<prefix><i> (robot1, robot2, ...) with fleet id equal to the namespace; Nav2's own
tb3_simulation_launch.py brings up each robot (the first one also starts Gazebo, the others
only spawn into it, a few seconds apart). The agents talk Zenoh to the fms_server started
here (start_server:=false to use another one through zenoh_endpoint).

AMCL starts without a pose: give each robot one (RViz "2D Pose Estimate", or publish on
/<ns>/initialpose, see docs/ros2.md); until then the agent reports its odometry pose.
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import (
    DeclareLaunchArgument,
    GroupAction,
    IncludeLaunchDescription,
    LogInfo,
    OpaqueFunction,
    TimerAction,
)
from launch.conditions import IfCondition
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

# Free spots of the TurtleBot3 world (Humble's default) to spawn robots at, x, y, yaw.
DEFAULT_POSES = [
    (-2.0, -0.5, 0.0), (-2.0, 0.5, 0.0), (-2.0, 1.5, 0.0), (-2.0, -1.5, 0.0),
    (0.5, -1.8, 1.57), (-0.5, -1.8, 1.57), (0.5, 1.8, -1.57), (-0.5, 1.8, -1.57),
]


def text(context, name):
    return LaunchConfiguration(name).perform(context).strip()


def parse_poses(raw, count):
    """'x,y,yaw;x,y,yaw;...' (as many as robots), or the defaults for an empty string."""
    if not raw:
        if count > len(DEFAULT_POSES):
            raise RuntimeError(
                f'count:={count}: give poses:="x,y,yaw;..." for more than '
                f'{len(DEFAULT_POSES)} robots')
        return DEFAULT_POSES[:count]
    poses = []
    for item in raw.split(';'):
        if not item.strip():
            continue
        parts = [float(p) for p in item.split(',')]
        if len(parts) == 2:
            parts.append(0.0)
        if len(parts) != 3:
            raise RuntimeError(f'pose {item!r} is not x,y or x,y,yaw')
        poses.append(tuple(parts))
    if len(poses) != count:
        raise RuntimeError(f'poses:= gives {len(poses)} poses for count:={count} robots')
    return poses


def launch_fleet(context, *args, **kwargs):
    raw = text(context, 'count')
    try:
        count = int(raw)
    except ValueError:
        raise RuntimeError(f"count must be a whole number, got '{raw}'") from None
    if not 1 <= count <= 50:
        raise RuntimeError(f'count must be between 1 and 50, got {count}')
    prefix = text(context, 'namespace_prefix')
    poses = parse_poses(text(context, 'poses'), count)
    nav2_launch = os.path.join(
        get_package_share_directory('nav2_bringup'), 'launch', 'tb3_simulation_launch.py')
    agent_launch = os.path.join(
        get_package_share_directory('fms_agent'), 'launch', 'agent.launch.py')
    stagger = float(text(context, 'spawn_interval'))

    actions = []
    for i in range(1, count + 1):
        ns = f'{prefix}{i}'
        x, y, yaw = poses[i - 1]
        sim_args = {
            'namespace': ns,
            'use_namespace': 'True',
            'robot_name': ns,
            # The first robot starts Gazebo; the others spawn into it.
            'use_simulator': 'True' if i == 1 else 'False',
            'headless': text(context, 'headless'),
            'use_rviz': 'False',
            'use_sim_time': 'True',
            'autostart': 'True',
            'x_pose': str(x),
            'y_pose': str(y),
            'z_pose': '0.01',
            'yaw': str(yaw),
        }
        for name in ('map', 'params_file', 'world'):
            value = text(context, 'nav2_' + name if name == 'params_file' else name)
            if value:
                sim_args[name] = value
        robot = GroupAction([
            LogInfo(msg=f'fleet_sim: robot {ns} at x={x} y={y} yaw={yaw}'),
            IncludeLaunchDescription(
                PythonLaunchDescriptionSource(nav2_launch),
                launch_arguments=sim_args.items(),
            ),
            IncludeLaunchDescription(
                PythonLaunchDescriptionSource(agent_launch),
                launch_arguments={
                    'namespace': ns,
                    'robot_id': ns,
                    'interface': 'ros2',
                    'use_sim_time': 'true',
                    'zenoh_endpoint': LaunchConfiguration('zenoh_endpoint'),
                    'params_file': LaunchConfiguration('agent_params_file'),
                    'log_level': LaunchConfiguration('log_level'),
                }.items(),
            ),
        ])
        if i == 1:
            actions.append(robot)
        else:
            actions.append(TimerAction(period=stagger * (i - 1), actions=[robot]))
    return actions


def generate_launch_description():
    share = get_package_share_directory('fms_agent')
    server = IncludeLaunchDescription(
        PythonLaunchDescriptionSource(os.path.join(share, 'launch', 'server.launch.py')),
        launch_arguments={
            'port': LaunchConfiguration('server_port'),
            'zenoh_listen': LaunchConfiguration('zenoh_listen'),
            'log_level': LaunchConfiguration('log_level'),
        }.items(),
        condition=IfCondition(LaunchConfiguration('start_server')),
    )
    return LaunchDescription([
        DeclareLaunchArgument('count', default_value='2', description='Number of robots (1-50)'),
        DeclareLaunchArgument(
            'namespace_prefix', default_value='robot',
            description='Robot i runs in namespace <prefix><i>, which is also its fleet id'),
        DeclareLaunchArgument(
            'poses', default_value='',
            description="Spawn poses 'x,y,yaw;x,y,yaw;...' (default: spots of the TB3 world)"),
        DeclareLaunchArgument(
            'spawn_interval', default_value='8.0',
            description='Seconds between bringing up consecutive robots'),
        DeclareLaunchArgument(
            'headless', default_value='True', description='Run Gazebo without its GUI'),
        DeclareLaunchArgument(
            'world', default_value='', description="Gazebo world (default: nav2_bringup's)"),
        DeclareLaunchArgument(
            'map', default_value='', description="Map YAML for AMCL (default: nav2_bringup's)"),
        DeclareLaunchArgument(
            'nav2_params_file', default_value='',
            description="Nav2 parameters (default: nav2_bringup's nav2_params.yaml)"),
        DeclareLaunchArgument(
            'agent_params_file',
            default_value=os.path.join(share, 'config', 'fms_agent.params.yaml'),
            description='fms_agent parameters file'),
        DeclareLaunchArgument(
            'start_server', default_value='true',
            description='Start fms_server here (false: use the one at zenoh_endpoint)'),
        DeclareLaunchArgument('server_port', default_value='8088', description='fms_server HTTP port'),
        DeclareLaunchArgument(
            'zenoh_listen', default_value='tcp/0.0.0.0:7447',
            description="fms_server's embedded Zenoh router"),
        DeclareLaunchArgument(
            'zenoh_endpoint', default_value='tcp/127.0.0.1:7447',
            description='Where the agents connect'),
        DeclareLaunchArgument(
            'log_level', default_value='info', description='fms log level'),
        server,
        OpaqueFunction(function=launch_fleet),
    ])
