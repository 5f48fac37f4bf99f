use super::*;

fn strings(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| s.to_string()).collect()
}

#[test]
fn ros_args_are_split_off() {
    let (ours, ros) = split_ros_args(strings(&[
        "fms_agent",
        "--rate",
        "10",
        "--ros-args",
        "-r",
        "__node:=fms_agent",
        "-r",
        "__ns:=/tb3_1",
        "-p",
        "robot_id:=tb3_9",
        "--params-file",
        "/tmp/p.yaml",
        "-r",
        "odom:=/odometry",
        "--",
        "--max-speed",
        "0.5",
    ]))
    .unwrap();
    assert_eq!(
        ours,
        strings(&["fms_agent", "--rate", "10", "--max-speed", "0.5"])
    );
    assert_eq!(ros.namespace.as_deref(), Some("/tb3_1"));
    assert_eq!(ros.node_name.as_deref(), Some("fms_agent"));
    assert_eq!(ros.params, vec![("robot_id".into(), "tb3_9".into())]);
    assert_eq!(ros.remaps, vec![("odom".into(), "/odometry".into())]);
    assert_eq!(ros.params_files, vec![PathBuf::from("/tmp/p.yaml")]);
    assert!(split_ros_args(strings(&["a", "--ros-args", "-r"])).is_err());
    assert!(split_ros_args(strings(&["a", "--ros-args", "-r", "nope"])).is_err());
}

#[test]
fn robot_id_precedence_and_namespace_default() {
    let ros = RosArgs {
        namespace: Some("/tb3_1".into()),
        ..RosArgs::default()
    };
    let c = AgentConfig::resolve(Cli::default(), ros.clone()).unwrap();
    assert_eq!(c.robot_id.as_str(), "tb3_1");
    let cli = Cli {
        robot_id: Some("r7".into()),
        ..Cli::default()
    };
    assert_eq!(
        AgentConfig::resolve(cli, ros).unwrap().robot_id.as_str(),
        "r7"
    );
    assert!(matches!(
        AgentConfig::resolve(Cli::default(), RosArgs::default()),
        Err(ConfigError::MissingRobotId)
    ));
    let bad = Cli {
        robot_id: Some("fms/**".into()),
        ..Cli::default()
    };
    assert!(matches!(
        AgentConfig::resolve(bad, RosArgs::default()),
        Err(ConfigError::Invalid { .. })
    ));
}

#[test]
fn file_is_overridden_by_flags_and_unknown_keys_fail() {
    let dir = std::env::temp_dir().join(format!("fms_agent_cfg_{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("agent.toml");
    std::fs::write(
        &path,
        "robot_id = \"file_bot\"\nrate = 2.0\n[sim]\nstart_pose = [1.0, 2.0, 0.5]\n",
    )
    .unwrap();
    let cli = Cli {
        config: Some(path.clone()),
        rate: Some(8.0),
        ..Cli::default()
    };
    let c = AgentConfig::resolve(cli, RosArgs::default()).unwrap();
    assert_eq!((c.robot_id.as_str(), c.rate_hz), ("file_bot", 8.0));
    assert_eq!(c.start_pose, Pose::new(1.0, 2.0, 0.5));
    std::fs::write(&path, "robot_id = \"x\"\nspeed = 3\n").unwrap();
    let err = AgentConfig::resolve(
        Cli {
            config: Some(path),
            ..Cli::default()
        },
        RosArgs::default(),
    );
    assert!(matches!(err, Err(ConfigError::Parse { .. })), "{err:?}");
}

#[test]
fn shipped_config_file_parses_and_matches_defaults() {
    let path = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../config/agent.toml"));
    let id = || Some("tb3_1".to_owned());
    let from_file = AgentConfig::resolve(
        Cli {
            config: Some(path),
            robot_id: id(),
            ..Cli::default()
        },
        RosArgs::default(),
    )
    .unwrap();
    let defaults = AgentConfig::resolve(
        Cli {
            robot_id: id(),
            ..Cli::default()
        },
        RosArgs::default(),
    )
    .unwrap();
    assert_eq!(format!("{from_file:?}"), format!("{defaults:?}"));
}

#[test]
fn params_files_match_this_node_only() {
    let yaml = r#"
/**:
  ros__parameters:
    rate: 2
    use_sim_time: true
fms_agent:
  ros__parameters:
    odom_topic: odometry/filtered
/tb3_1/fms_agent:
  ros__parameters:
    robot_id: tb3_one
    nested:
      key: 3.5
    poses: [1, 2]
/**/fms_agent:
  ros__parameters:
    use_localization: false
other_node:
  ros__parameters:
    rate: 99
"#;
    let root = params_from_yaml(yaml, "fms_agent", "").unwrap();
    let names: Vec<&str> = root.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        names,
        ["rate", "use_sim_time", "odom_topic", "use_localization"]
    );
    let ns = params_from_yaml(yaml, "fms_agent", "/tb3_1").unwrap();
    assert!(ns.contains(&("robot_id".into(), "tb3_one".into())));
    assert!(ns.contains(&("nested.key".into(), "3.5".into())));
    assert!(ns.contains(&("use_localization".into(), "false".into())));
    assert!(!ns.iter().any(|(k, _)| k == "odom_topic" || k == "poses"));
    assert!(params_from_yaml("", "fms_agent", "").unwrap().is_empty());
    assert!(params_from_yaml("[1, 2]", "fms_agent", "").is_err());
    assert!(params_from_yaml("a: [", "fms_agent", "").is_err());
}

#[test]
fn ros_settings_from_file_params_file_and_params() {
    let dir = std::env::temp_dir().join(format!("fms_agent_ros_{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let toml = dir.join("agent.toml");
    std::fs::write(
        &toml,
        "robot_id = \"r\"\n[ros]\nodom_topic = \"wheel_odom\"\ncmd_vel_rate = 20.0\n\
             battery_scale = \"percent\"\n",
    )
    .unwrap();
    let yaml = dir.join("params.yaml");
    std::fs::write(
        &yaml,
        "/**:\n  ros__parameters:\n    cmd_vel_rate: 5\n    battery_topic: ''\n    \
             zenoh_endpoint: tcp/10.0.0.9:7447\n    interface: ros2\n",
    )
    .unwrap();
    let ros = RosArgs {
        namespace: Some("/tb3_2".into()),
        node_name: Some("agent".into()),
        params: vec![("use_localization".into(), "false".into())],
        params_files: vec![yaml.clone()],
        ..RosArgs::default()
    };
    let cli = || Cli {
        config: Some(toml.clone()),
        ..Cli::default()
    };
    let c = AgentConfig::resolve(cli(), ros.clone()).unwrap();
    let r = &c.ros2;
    assert_eq!(
        (r.node_name.as_str(), r.namespace.as_str()),
        ("agent", "/tb3_2")
    );
    assert_eq!(r.odom_topic, "wheel_odom", "file");
    assert_eq!(r.cmd_vel_rate, 5.0, "params file over file");
    assert_eq!(r.battery_topic, "", "params file");
    assert!(!r.use_localization, "-p");
    assert_eq!(r.battery_scale, BatteryScale::Percent);
    assert_eq!(r.amcl_pose_topic, "amcl_pose", "default");
    assert_eq!(c.zenoh_endpoint, "tcp/10.0.0.9:7447");
    assert_eq!(c.interface, Interface::Ros2);
    // -p wins over the params file; bad values are errors.
    let mut later = ros.clone();
    later.params.push(("cmd_vel_rate".into(), "50".into()));
    let c = AgentConfig::resolve(cli(), later).unwrap();
    assert_eq!(c.ros2.cmd_vel_rate, 50.0);
    assert_eq!(c.ros2.odom_timeout_s, 2.0);
    let mut later = ros.clone();
    later.params.push(("odom_timeout_s".into(), "0".into()));
    assert_eq!(
        AgentConfig::resolve(cli(), later)
            .unwrap()
            .ros2
            .odom_timeout_s,
        0.0
    );
    for (name, value) in [
        ("cmd_vel_rate", "fast"),
        ("cmd_vel_rate", "500"),
        ("use_localization", "maybe"),
        ("battery_scale", "volts"),
        ("odom_topic", ""),
        ("interface", "carrier-pigeon"),
        ("unknown_battery_percentage", "101"),
        ("odom_timeout_s", "-1"),
        ("odom_timeout_s", "NaN"),
    ] {
        let mut bad = ros.clone();
        bad.params.push((name.into(), value.into()));
        assert!(
            AgentConfig::resolve(cli(), bad).is_err(),
            "{name}:={value} accepted"
        );
    }
    let missing = RosArgs {
        params_files: vec![dir.join("nope.yaml")],
        ..RosArgs::default()
    };
    assert!(matches!(
        AgentConfig::resolve(cli(), missing),
        Err(ConfigError::ParamsFile { .. })
    ));
}

#[test]
fn shipped_params_file_parses() {
    let path = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../config/fms_agent.params.yaml"
    ));
    let ros = RosArgs {
        namespace: Some("/tb3_1".into()),
        params_files: vec![path],
        ..RosArgs::default()
    };
    let c = AgentConfig::resolve(Cli::default(), ros).unwrap();
    assert_eq!(c.robot_id.as_str(), "tb3_1");
    assert_eq!(
        c.ros2,
        Ros2Settings {
            namespace: "/tb3_1".into(),
            ..Ros2Settings::default()
        }
    );
}

#[test]
fn bad_numbers_are_rejected() {
    for cli in [
        Cli {
            robot_id: Some("r".into()),
            rate: Some(0.0),
            ..Cli::default()
        },
        Cli {
            robot_id: Some("r".into()),
            rate: Some(f64::NAN),
            ..Cli::default()
        },
        Cli {
            robot_id: Some("r".into()),
            failure_probability: Some(1.5),
            ..Cli::default()
        },
    ] {
        assert!(AgentConfig::resolve(cli, RosArgs::default()).is_err());
    }
    assert!(parse_pose("1,2,x").is_err());
    assert!(parse_pose("1,inf,0").is_err());
    assert_eq!(parse_pose("-1.5,2").unwrap(), Pose::new(-1.5, 2.0, 0.0));
}

/// The Python FMS agent's environment (its `agent/.env`), as the precedence test sets it.
const OLD_ENV: [(&str, &str); 4] = [
    ("ROBOT_ID", "robot-env-001"),
    ("ZENOH_ENDPOINT", "tcp/env:7447"),
    ("LOG_LEVEL", "DEBUG"),
    ("ROS_DOMAIN_ID", "42"),
];

#[test]
fn the_python_fms_config_json_is_read_and_env_and_flags_override_it() {
    let dir = std::env::temp_dir().join(format!("fms_agent_json_{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("config.json");
    std::fs::write(
        &path,
        r#"{"robot_id":"robot-file-001","zenoh_server_endpoint":"tcp/zenoh.site:7447",
            "interface":"mock","ros_domain_id":7,
            "logging":{"level":"WARNING","file":"/var/log/agent.log","backup_count":3}}"#,
    )
    .unwrap();
    let with_file = |cli: Cli| AgentConfig::resolve(cli, RosArgs::default()).unwrap();
    let c = with_file(Cli {
        config: Some(path.clone()),
        ..Cli::default()
    });
    assert_eq!(c.robot_id.as_str(), "robot-file-001");
    assert_eq!(c.zenoh_endpoint, "tcp/zenoh.site:7447");
    assert_eq!(c.interface, Interface::Mock);
    assert_eq!(c.ros2dds.domain, 7);
    assert_eq!(c.log_level, "warn");
    // The log file keys mean nothing to the agent: one warning names them.
    assert_eq!(c.warnings.len(), 1, "{:?}", c.warnings);
    assert!(
        c.warnings[0].contains("logging.file") && c.warnings[0].contains("logging.backup_count"),
        "{:?}",
        c.warnings
    );

    // Environment over the file, flags over the environment (clap merges both into Cli).
    let saved: Vec<_> = OLD_ENV
        .iter()
        .map(|(var, _)| (*var, std::env::var_os(var)))
        .collect();
    for (var, value) in OLD_ENV {
        std::env::set_var(var, value);
    }
    let json = path.display().to_string();
    let from_env = Cli::try_parse_from(["fms_agent", "--config", json.as_str()]);
    let from_flags = Cli::try_parse_from([
        "fms_agent",
        "--config",
        json.as_str(),
        "--robot-id",
        "robot-flag-001",
        "--zenoh-endpoint",
        "tcp/flag:7447",
        "--log-level",
        "error",
        "--ros-domain-id",
        "3",
    ]);
    for (var, value) in saved {
        match value {
            Some(v) => std::env::set_var(var, v),
            None => std::env::remove_var(var),
        }
    }
    let c = with_file(from_env.unwrap());
    assert_eq!(
        (
            c.robot_id.as_str(),
            c.zenoh_endpoint.as_str(),
            c.log_level.as_str(),
            c.ros2dds.domain
        ),
        ("robot-env-001", "tcp/env:7447", "debug", 42)
    );
    let c = with_file(from_flags.unwrap());
    assert_eq!(
        (
            c.robot_id.as_str(),
            c.zenoh_endpoint.as_str(),
            c.log_level.as_str(),
            c.ros2dds.domain
        ),
        ("robot-flag-001", "tcp/flag:7447", "error", 3)
    );

    // Unknown keys are errors, as in our TOML; a TOML file is still read as TOML.
    for bad in [
        r#"{"robot_id":"r1","heartbeat_hz":2}"#,
        r#"{"robot_id":"r1","logging":{"level":"INFO","colour":true}}"#,
        r#"{"robot_id":"r1","interface":"gazebo"}"#,
    ] {
        std::fs::write(&path, bad).unwrap();
        let err = AgentConfig::resolve(
            Cli {
                config: Some(path.clone()),
                ..Cli::default()
            },
            RosArgs::default(),
        );
        assert!(
            matches!(err, Err(ConfigError::ParseJson { .. })),
            "{bad}: {err:?}"
        );
    }
    let toml = dir.join("agent.toml");
    std::fs::write(&toml, "robot_id = \"t1\"\nlog_level = \"INFO\"\n").unwrap();
    let c = with_file(Cli {
        config: Some(toml),
        ..Cli::default()
    });
    assert_eq!((c.robot_id.as_str(), c.log_level.as_str()), ("t1", "info"));
    assert!(c.warnings.is_empty());
    let _ = std::fs::remove_dir_all(&dir);
}
