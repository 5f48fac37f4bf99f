#!/usr/bin/env python3
"""Static checks of the ROS 2 launch files in fms_agent/launch (installed by colcon).

Each file must compile, define generate_launch_description(), and use only launch APIs that
exist, with the same meaning, in both ROS 2 Humble and Jazzy: it may import only from the
modules below, and only the names listed for each (plus anything from `os`). Attribute use
on an imported module (launch.actions.X) is held to the same list. No ROS is needed.

    python3 scripts/check_launch.py        prints PASS/FAIL lines and "N passed, M failed"
"""

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LAUNCH_DIR = ROOT / 'fms_agent' / 'launch'

# module -> names it may provide (None: any name, for the standard library's os)
ALLOWED = {
    'os': None,
    'launch': {'LaunchDescription'},
    'launch.actions': {
        'DeclareLaunchArgument', 'IncludeLaunchDescription', 'GroupAction', 'OpaqueFunction',
        'SetEnvironmentVariable', 'LogInfo', 'TimerAction',
    },
    'launch.substitutions': {
        'LaunchConfiguration', 'PathJoinSubstitution', 'TextSubstitution',
        'EnvironmentVariable', 'PythonExpression',
    },
    'launch.conditions': {'IfCondition', 'UnlessCondition'},
    'launch.launch_description_sources': {'PythonLaunchDescriptionSource'},
    'launch_ros': set(),
    'launch_ros.actions': {'Node', 'PushRosNamespace'},
    'launch_ros.substitutions': {'FindPackageShare'},
    'ament_index_python.packages': {'get_package_share_directory'},
}
# Launch files every install must have.
REQUIRED = ('agent.launch.py', 'fleet_sim.launch.py', 'server.launch.py')


def dotted(node):
    """'a.b.c' for an attribute chain on a plain name, else None."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return '.'.join(reversed(parts))
    return None


def check_module_use(path, module, name, where):
    if module not in ALLOWED:
        return [f'{path.name}:{where}: import from {module!r} is not allowed']
    names = ALLOWED[module]
    if names is not None and name is not None and name not in names:
        return [f'{path.name}:{where}: {module}.{name} is not in the Humble/Jazzy allow-list']
    return []


def check_file(path):
    source = path.read_text()
    try:
        tree = ast.parse(source, filename=str(path))
        compile(source, str(path), 'exec')
    except SyntaxError as e:
        return [f'{path.name}: does not compile: {e}']
    problems = []
    modules = {}  # local alias -> module, for `import x.y` / `import x.y as z`
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                problems += check_module_use(path, alias.name, None, node.lineno)
                if alias.asname:
                    modules[alias.asname] = alias.name
                else:
                    modules[alias.name.split('.')[0]] = alias.name.split('.')[0]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                problems.append(f'{path.name}:{node.lineno}: relative import')
                continue
            for alias in node.names:
                if alias.name == '*':
                    problems.append(f'{path.name}:{node.lineno}: wildcard import')
                else:
                    problems += check_module_use(path, node.module, alias.name, node.lineno)
    # Attribute chains on imported modules: the longest allowed module prefix, then one name.
    for node in ast.walk(tree):
        if not isinstance(node, ast.Attribute):
            continue
        chain = dotted(node)
        if not chain:
            continue
        root, _, rest = chain.partition('.')
        if root not in modules or modules[root] == 'os':
            continue
        full = modules[root] + ('.' + rest if rest else '')
        parts = full.split('.')
        for cut in range(len(parts), 0, -1):
            module = '.'.join(parts[:cut])
            if module in ALLOWED:
                name = parts[cut] if cut < len(parts) else None
                problems += check_module_use(path, module, name, node.lineno)
                break
        else:
            problems.append(f'{path.name}:{node.lineno}: {full} is not allowed')
    if not any(isinstance(n, ast.FunctionDef) and n.name == 'generate_launch_description'
               for n in tree.body):
        problems.append(f'{path.name}: no generate_launch_description()')
    return problems


def main():
    passed = failed = 0

    def report(ok, what, detail=''):
        nonlocal passed, failed
        if ok:
            passed += 1
            print(f'PASS: {what}')
        else:
            failed += 1
            print(f'FAIL: {what}{": " + detail if detail else ""}')

    files = sorted(LAUNCH_DIR.glob('*.launch.py'))
    for name in REQUIRED:
        report((LAUNCH_DIR / name).is_file(), f'fms_agent/launch/{name} exists')
    for path in files:
        problems = check_file(path)
        report(not problems, f'{path.name} compiles and uses only Humble/Jazzy launch APIs',
               '; '.join(problems))
    top = ROOT / 'launch'
    report(top.resolve() == LAUNCH_DIR.resolve() or all(
        (top / p.name).is_file() and (top / p.name).read_bytes() == p.read_bytes() for p in files),
        'launch/ is fms_agent/launch (symlink or identical copy)')
    print(f'{passed} passed, {failed} failed')
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
