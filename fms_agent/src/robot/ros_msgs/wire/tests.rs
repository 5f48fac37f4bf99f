use proptest::prelude::*;

use super::super::messages::*;
use super::*;

fn le_f64s(values: &[f64]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

#[test]
fn twist_is_six_doubles_after_the_little_endian_header() {
    let t = Twist {
        linear: Vector3 {
            x: 1.0,
            y: 2.0,
            z: 3.0,
        },
        angular: Vector3 {
            x: 4.0,
            y: 5.0,
            z: 6.0,
        },
    };
    let mut expected = vec![0x00, 0x01, 0x00, 0x00];
    expected.extend(le_f64s(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]));
    assert_eq!(encode(&t).unwrap(), expected);
    assert_eq!(decode::<Twist>(&expected).unwrap(), t);
}

/// The layout a ROS 2 action client puts on `navigate_to_pose/_action/send_goal`, byte by
/// byte: strings carry their length including the NUL, doubles align to 8 from the body start.
#[test]
fn send_goal_request_matches_the_ros_layout() {
    let mut uuid = [0u8; 16];
    for (i, b) in uuid.iter_mut().enumerate() {
        *b = i as u8;
    }
    let req = SendGoalRequest {
        goal_id: GoalId { uuid },
        goal: NavigateToPoseGoal {
            pose: PoseStamped {
                header: Header {
                    stamp: Time { sec: 7, nanosec: 9 },
                    frame_id: "map".into(),
                },
                pose: RosPose {
                    position: Point {
                        x: 1.5,
                        y: -2.0,
                        z: 0.0,
                    },
                    orientation: Quaternion::default(),
                },
            },
            behavior_tree: String::new(),
        },
    };
    let mut expected = vec![0x00, 0x01, 0x00, 0x00];
    expected.extend(uuid); // body 0..16
    expected.extend(7i32.to_le_bytes()); // 16..20
    expected.extend(9u32.to_le_bytes()); // 20..24
    expected.extend(4u32.to_le_bytes()); // 24..28
    expected.extend(b"map\0"); // 28..32
    expected.extend(le_f64s(&[1.5, -2.0, 0.0, 0.0, 0.0, 0.0, 1.0])); // 32..88
    expected.extend(1u32.to_le_bytes()); // 88..92: empty string, NUL only
    expected.push(0);
    assert_eq!(encode(&req).unwrap(), expected);
    assert_eq!(decode::<SendGoalRequest>(&expected).unwrap(), req);
}

#[test]
fn big_endian_payloads_decode() {
    let mut bytes = vec![0x00, 0x00, 0x00, 0x00];
    for v in [0.5f64, 0.0, 0.0, 0.0, 0.0, -0.25] {
        bytes.extend(v.to_be_bytes());
    }
    let t: Twist = decode(&bytes).unwrap();
    assert_eq!(t.linear.x, 0.5);
    assert_eq!(t.angular.z, -0.25);
}

fn odometry() -> Odometry {
    let mut o = Odometry::default();
    o.header.frame_id = "odom".into();
    o.child_frame_id = "base_footprint".into();
    o.pose.pose.position.x = 3.25;
    o.pose.covariance = (0..36).map(f64::from).collect();
    o.twist.twist.linear.x = 0.4;
    o.twist.covariance = vec![0.5; 36];
    o
}

#[test]
fn every_message_round_trips() {
    let odom = odometry();
    assert_eq!(decode::<Odometry>(&encode(&odom).unwrap()).unwrap(), odom);
    // Covariance is a fixed array: 36 doubles, no length; Odometry's size shows it.
    let header = 4 + 8 + (4 + 5 + 3); // encapsulation, stamp, "odom\0" + pad to 8
    let child = 4 + 15 + 1; // "base_footprint\0" + pad
    let pose = 7 * 8 + 36 * 8;
    let twist = 6 * 8 + 36 * 8;
    assert_eq!(encode(&odom).unwrap().len(), header + child + pose + twist);

    let amcl = PoseWithCovarianceStamped {
        header: Header {
            stamp: Time { sec: 1, nanosec: 2 },
            frame_id: "map".into(),
        },
        pose: PoseWithCovariance {
            pose: RosPose::default(),
            covariance: vec![0.1; 36],
        },
    };
    assert_eq!(
        decode::<PoseWithCovarianceStamped>(&encode(&amcl).unwrap()).unwrap(),
        amcl
    );

    let battery = BatteryState {
        voltage: 12.5,
        percentage: 0.87,
        power_supply_status: BatteryState::POWER_SUPPLY_STATUS_CHARGING,
        present: true,
        cell_voltage: vec![4.1, 4.2, 4.0],
        location: "base".into(),
        serial_number: "SN-1".into(),
        ..BatteryState::default()
    };
    assert_eq!(
        decode::<BatteryState>(&encode(&battery).unwrap()).unwrap(),
        battery
    );

    let fb = FeedbackMessage {
        goal_id: GoalId { uuid: [9; 16] },
        feedback: NavigateToPoseFeedback {
            number_of_recoveries: 2,
            distance_remaining: 4.5,
            navigation_time: RosDuration { sec: 3, nanosec: 0 },
            ..NavigateToPoseFeedback::default()
        },
    };
    assert_eq!(
        decode::<FeedbackMessage>(&encode(&fb).unwrap()).unwrap(),
        fb
    );

    let status = GoalStatusArray {
        status_list: vec![GoalStatus {
            goal_info: GoalInfo {
                goal_id: GoalId { uuid: [1; 16] },
                stamp: Time { sec: 5, nanosec: 6 },
            },
            status: 4,
        }],
    };
    assert_eq!(
        decode::<GoalStatusArray>(&encode(&status).unwrap()).unwrap(),
        status
    );

    let cancel = CancelGoalResponse {
        return_code: 0,
        goals_canceling: vec![GoalInfo::default()],
    };
    assert_eq!(
        decode::<CancelGoalResponse>(&encode(&cancel).unwrap()).unwrap(),
        cancel
    );
    let accepted = SendGoalResponse {
        accepted: true,
        stamp: Time { sec: 1, nanosec: 1 },
    };
    assert_eq!(
        decode::<SendGoalResponse>(&encode(&accepted).unwrap()).unwrap(),
        accepted
    );
}

#[test]
fn nan_distance_survives_cdr() {
    let fb = NavigateToPoseFeedback {
        distance_remaining: f32::NAN,
        ..NavigateToPoseFeedback::default()
    };
    let back: NavigateToPoseFeedback = decode(&encode(&fb).unwrap()).unwrap();
    assert!(back.distance_remaining.is_nan());
}

#[test]
fn get_result_reads_every_distribution() {
    // Jazzy: status, error_code, error_msg.
    let jazzy = GetResultResponse {
        status: 6,
        result: NavigateToPoseResult {
            error_code: 104,
            error_msg: "no valid path".into(),
        },
    };
    assert_eq!(decode_get_result(&encode(&jazzy).unwrap()).unwrap(), jazzy);
    // Iron: status, error_code.
    let iron = encode(&(4i8, 0u16)).unwrap();
    let r = decode_get_result(&iron).unwrap();
    assert_eq!((r.status, r.result.error_code), (4, 0));
    let iron_fail = encode(&(6i8, 105u16)).unwrap();
    assert_eq!(
        decode_get_result(&iron_fail).unwrap().result.error_code,
        105
    );
    // Humble: status, std_msgs/Empty (one placeholder byte).
    let humble = encode(&(5i8, 0u8)).unwrap();
    let r = decode_get_result(&humble).unwrap();
    assert_eq!(r.status, 5);
    assert_eq!(r.result, NavigateToPoseResult::default());
}

#[test]
fn bad_payloads_are_errors() {
    assert_eq!(decode::<Twist>(&[0, 1]), Err(WireError::Short(2)));
    let mut xcdr2 = encode(&Twist::default()).unwrap();
    xcdr2[1] = 0x07;
    assert_eq!(decode::<Twist>(&xcdr2), Err(WireError::Encapsulation(0, 7)));
    let truncated = &encode(&Twist::default()).unwrap()[..20];
    assert!(matches!(
        decode::<Twist>(truncated),
        Err(WireError::Malformed {
            type_name: "Twist",
            ..
        })
    ));
    // A string that claims 4 GB: an error, not an allocation.
    let mut huge = vec![0x00, 0x01, 0x00, 0x00];
    huge.extend([0u8; 8]);
    huge.extend(u32::MAX.to_le_bytes());
    assert!(matches!(
        decode::<Header>(&huge),
        Err(WireError::Malformed { .. })
    ));
    // Nor a sequence that claims 4 billion goals.
    let mut many = vec![0x00, 0x01, 0x00, 0x00];
    many.extend(u32::MAX.to_le_bytes());
    assert!(decode::<GoalStatusArray>(&many).is_err());
    assert!(decode_get_result(&[0, 1, 0, 0]).is_err());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// Whatever arrives on a ROS topic, decoding returns; it never panics.
    #[test]
    fn decoding_arbitrary_bytes_never_panics(
        body in proptest::collection::vec(any::<u8>(), 0..600),
        le in any::<bool>(),
    ) {
        let mut bytes = vec![0x00, u8::from(le), 0x00, 0x00];
        bytes.extend(body);
        let _ = decode::<Odometry>(&bytes);
        let _ = decode::<PoseWithCovarianceStamped>(&bytes);
        let _ = decode::<BatteryState>(&bytes);
        let _ = decode::<FeedbackMessage>(&bytes);
        let _ = decode::<SendGoalResponse>(&bytes);
        let _ = decode::<CancelGoalResponse>(&bytes);
        let _ = decode::<GoalStatusArray>(&bytes);
        let _ = decode_get_result(&bytes);
    }

    #[test]
    fn poses_round_trip(x in -1e6f64..1e6, y in -1e6f64..1e6, yaw in -3.1f64..3.1, frame in "[a-z_/]{0,20}") {
        let mut goal = crate::robot::ros_msgs::navigate_to_pose_goal(&fms_msgs::Pose::new(x, y, yaw), "map");
        goal.pose.header.frame_id = frame;
        let req = SendGoalRequest { goal_id: GoalId { uuid: [3; 16] }, goal };
        prop_assert_eq!(decode::<SendGoalRequest>(&encode(&req).unwrap()).unwrap(), req);
    }
}

/// Found by the `ros_cdr` fuzz target: odometry and an AMCL pose with extreme values must
/// not panic anywhere in the bridge.
#[test]
fn extreme_poses_do_not_panic_the_bridge() {
    let data = include_bytes!("odom_amcl_overflow.cdr");
    let mut bridge = crate::robot::ros_msgs::RosBridge::new(Default::default());
    if let Ok(odom) = decode::<Odometry>(data) {
        bridge.on_odom(&odom);
    }
    if let Ok(amcl) = decode::<PoseWithCovarianceStamped>(data) {
        bridge.on_amcl_pose(&amcl);
    }
    if let Ok(odom) = decode::<Odometry>(data) {
        bridge.on_odom(&odom);
    }
    let snap = bridge.snapshot();
    assert!(snap.pose.x.is_finite() && snap.pose.y.is_finite() && snap.pose.yaw.is_finite());
}
