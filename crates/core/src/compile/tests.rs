//! Compilation tests: located diagnostics, windows, units.

use chrono::NaiveDate;

use crate::model::*;
use crate::policy::Literal;
use crate::service::QuotaPeriod;
use crate::time::{Offset, TimeUnit};

const BASE: &str = r#"
[sources.customers]
path = "customers.csv"
key = "customer_id"

[sources.tx]
path = "tx.csv"
key = "customer_id"
time = "ts"

[metrics.revenue]
source = "tx"
expr = "sum(amount)"
window = "12 months"

[metrics.prev]
source = "tx"
expr = "sum(amount)"
window = { from = "24 months", to = "12 months" }

[metrics.growth]
expr = "revenue / nullif(prev, 0) - 1"
"#;

#[test]
fn compiles_and_orders_metrics() {
    let text = format!(
        "{BASE}\n[ladders.v]\nrank_by = \"revenue\"\n[[ladders.v.levels]]\nname = \"top\"\ntop_share = 0.2\n[[ladders.v.levels]]\nname = \"rest\"\nrest = true\n"
    );
    let p = Policy::from_str("p.toml", &text).unwrap();
    let names: Vec<_> = p.metrics.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["revenue", "prev", "growth"]);
    match &p.metrics[0].kind {
        MetricKind::Event {
            default, window, ..
        } => {
            assert_eq!(default, &Some(Literal::Num(0.0)));
            let (s, e) = window
                .unwrap()
                .bounds(NaiveDate::from_ymd_opt(2026, 10, 31).unwrap());
            assert_eq!(s.to_string(), "2025-11-01");
            assert_eq!(e.to_string(), "2026-11-01");
        }
        other => panic!("{other:?}"),
    }
    match &p.metrics[1].kind {
        MetricKind::Event { window, .. } => {
            let (s, e) = window
                .unwrap()
                .bounds(NaiveDate::from_ymd_opt(2026, 10, 31).unwrap());
            assert_eq!(
                (s.to_string(), e.to_string()),
                ("2024-11-01".into(), "2025-11-01".into())
            );
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn windows_longer_than_two_centuries_and_huge_expressions_are_located_errors() {
    let ladder = "\n[ladders.v]\n[[ladders.v.levels]]\nname = \"rest\"\nrest = true\n";
    let text =
        format!("{BASE}{ladder}").replace("window = \"12 months\"", "window = \"300000 years\"");
    let err = Policy::from_str("p.toml", &text).unwrap_err().to_string();
    assert!(
        err.contains("`300000 years` is longer than 200 years"),
        "{err}"
    );
    assert!(err.contains("metrics.revenue.window"), "{err}");
    assert!(Offset::parse("200 years").is_ok());
    assert!(Offset::parse("4294967295 months").is_err());
    let huge = format!("sum(amount){}", " + sum(amount)".repeat(1_000));
    let text = format!("{BASE}{ladder}").replace(
        "expr = \"sum(amount)\"\nwindow = \"12",
        &format!("expr = \"{huge}\"\nwindow = \"12"),
    );
    let err = Policy::from_str("p.toml", &text).unwrap_err().to_string();
    assert!(err.contains("error[expression_too_large]"), "{err}");
    assert!(err.contains("metrics.revenue.expr"), "{err}");
}

#[test]
fn unknown_name_in_condition_is_located_with_suggestion() {
    let text = format!(
        "{BASE}\n[ladders.v]\n[[ladders.v.levels]]\nname = \"gold\"\nwhen = \"revenu >= 100\"\n[[ladders.v.levels]]\nname = \"rest\"\nrest = true\n"
    );
    let err = Policy::from_str("p.toml", &text).unwrap_err();
    let d = err.errors().next().unwrap();
    assert_eq!(d.code, "unknown_metric");
    assert_eq!(d.key, "ladders.v.levels[0].when");
    assert_eq!(d.location.as_ref().unwrap().line, 27);
    assert_eq!(d.help.as_deref(), Some("did you mean `revenue`?"));
}

#[test]
fn lifetime_metrics_and_churn_are_checked_where_they_are_written() {
    let ladder = "[ladders.l]\n[[ladders.l.levels]]\nname = \"all\"\nrest = true\n";
    let errors = |extra: &str| -> Vec<(&'static str, String, String)> {
        let text = format!("{BASE}\n{ladder}{extra}");
        Policy::from_str("p.toml", &text)
            .unwrap_err()
            .errors()
            .map(|d| (d.code, d.key.clone(), d.message.clone()))
            .collect()
    };
    // No [lifetime] table.
    let e = errors("[metrics.alive]\nlifetime = \"p_alive\"\n");
    assert_eq!(
        (e[0].0, e[0].1.as_str()),
        ("missing_lifetime", "metrics.alive.lifetime")
    );
    let lifetime = "[lifetime]\nsource = \"tx\"\n";
    // A misspelt measure gets a did-you-mean; clv without an amount names what is missing.
    let e = errors(&format!(
        "{lifetime}[metrics.alive]\nlifetime = \"p_alvie\"\n"
    ));
    assert_eq!(e[0].0, "invalid_lifetime");
    assert!(e[0].2.contains("did you mean `p_alive`?"), "{e:?}");
    let e = errors(&format!("{lifetime}[metrics.v]\nlifetime = \"clv(12)\"\n"));
    assert!(e[0].2.contains("clv(MONTHS, MONTHLY_DISCOUNT)"), "{e:?}");
    let e = errors(&format!(
        "{lifetime}[metrics.v]\nlifetime = \"clv(12, 0.01)\"\n"
    ));
    assert_eq!(e[0].0, "missing_amount");
    // The source must be an event source; the unit one of three.
    let e = errors(
        "[lifetime]\nsource = \"customers\"\nunit = \"fortnight\"\n[metrics.a]\nlifetime = \"p_alive\"\n",
    );
    let codes: Vec<_> = e.iter().map(|x| x.0).collect();
    assert_eq!(codes, ["invalid_unit"]);
    let e = errors("[lifetime]\nsource = \"customers\"\n[metrics.a]\nlifetime = \"p_alive\"\n");
    assert_eq!(e[0].0, "lifetime_without_time");
    // [churn] names metrics and a ladder that exist, and probabilities.
    let e = errors(&format!(
        "{lifetime}[metrics.alive]\nlifetime = \"p_alive\"\n[churn]\np_alive = \"alve\"\nbelow = 1.5\nladder = \"m\"\n"
    ));
    let codes: Vec<_> = e.iter().map(|x| (x.0, x.1.as_str())).collect();
    assert_eq!(
        codes,
        [
            ("unknown_metric", "churn.p_alive"),
            ("invalid_churn", "churn.below"),
            ("unknown_ladder", "churn.ladder")
        ]
    );
    // And a correct one compiles, with the defaults.
    let text = format!(
        "{BASE}\n{ladder}{lifetime}amount = \"amount\"\n[metrics.p_alive]\nlifetime = \"p_alive\"\n[metrics.v]\nlifetime = \"clv(12, 0.01)\"\n[churn]\nvalue = \"v\"\n"
    );
    let p = Policy::from_str("p.toml", &text).unwrap();
    let churn = p.churn.unwrap();
    assert_eq!(
        (churn.p_alive.as_str(), churn.below, churn.drop),
        ("p_alive", 0.5, 0.2)
    );
    assert_eq!(p.lifetime.unwrap().unit, TimeUnit::Week);
}

#[test]
fn cycles_and_missing_rules_are_errors() {
    let text = "[sources.customers]\npath=\"c.csv\"\nkey=\"id\"\n[metrics.a]\nexpr=\"b + 1\"\n[metrics.b]\nexpr=\"a + 1\"\n[ladders.l]\n[[ladders.l.levels]]\nname=\"x\"\n";
    let err = Policy::from_str("p.toml", text).unwrap_err();
    let codes: Vec<_> = err.errors().map(|d| d.code).collect();
    assert!(codes.contains(&"metric_cycle"), "{codes:?}");
    assert!(codes.contains(&"missing_rule"), "{codes:?}");
}

#[test]
fn quota_levels_need_rank_by_and_shares_at_most_one() {
    let text = format!(
        "{BASE}\n[ladders.v]\n[[ladders.v.levels]]\nname = \"a\"\ntop_share = 0.7\n[[ladders.v.levels]]\nname = \"b\"\ntop_share = 0.5\n"
    );
    let err = Policy::from_str("p.toml", &text).unwrap_err();
    let codes: Vec<_> = err.errors().map(|d| d.code).collect();
    assert!(codes.contains(&"missing_rank_by"));
    assert!(codes.contains(&"shares_over_one"));
}

#[test]
fn a_level_named_like_a_placeholder_is_an_error() {
    let text = format!(
        "{BASE}\n[ladders.v]\n[[ladders.v.levels]]\nname = \"gold\"\nwhen = \"true\"\n[[ladders.v.levels]]\nname = \"(unplaced)\"\nrest = true\n"
    );
    let err = Policy::from_str("p.toml", &text).unwrap_err();
    let d = err.errors().find(|d| d.code == "reserved_level").unwrap();
    assert_eq!(d.key, "ladders.v.levels[1].name");
    assert_eq!(
        d.message,
        "`(unplaced)` is what Stratum calls a customer who matches no level; a level cannot be named so"
    );
}

#[test]
fn units_parse_once_for_windows_quotas_and_models() {
    assert_eq!(TimeUnit::parse("weeks"), Some(TimeUnit::Week));
    assert_eq!("month".parse::<TimeUnit>(), Ok(TimeUnit::Month));
    assert!("fortnight".parse::<TimeUnit>().is_err());
    assert_eq!(
        QuotaPeriod::parse("30 days"),
        Some(QuotaPeriod::Rolling { days: 30 })
    );
    assert_eq!(QuotaPeriod::parse("0 days"), None);
    assert_eq!(QuotaPeriod::parse("2 weeks"), None);
}

#[test]
fn offsets_parse() {
    assert_eq!(
        Offset::parse("90 days").unwrap(),
        Offset {
            amount: 90,
            unit: TimeUnit::Day
        }
    );
    assert_eq!(Offset::parse("1 year").unwrap().unit, TimeUnit::Year);
    assert!(Offset::parse("twelve months").is_err());
    assert!(
        Offset::parse("3 fortnights")
            .unwrap_err()
            .contains("unknown unit")
    );
}

const PIPELINE: &str = r#"
[ladders.v]
[[ladders.v.levels]]
name = "all"
rest = true

[pipeline]
calendar = "calendar.csv"
daily_capacity = 60
weekly_targets = { mon = 35, tue = 25, wed = 25, thu = 20, fri = 15 }

[[pipeline.classes]]
name = "0"
capacity = 100
follow_up_days = 1

[[pipeline.classes]]
name = "1"
follow_up_days = 1
pay_within_days = 2

[[pipeline.classes]]
name = "key-3"
capacity = 15
follow_up_days = 5
pay_within_days = 10

[[pipeline.quotas]]
classes = ["0"]
min = 10
max = 15
"#;

#[test]
fn a_pipeline_compiles_with_its_classes_quotas_and_targets() {
    let p = Policy::from_str("p.toml", &format!("{BASE}{PIPELINE}")).unwrap();
    let pipeline = p.pipeline.unwrap();
    let names: Vec<&str> = pipeline.classes.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["0", "1", "key-3"]);
    assert_eq!(pipeline.classes[2].pay_within_days, Some(10));
    assert_eq!(pipeline.quotas[0].classes, [0]);
    assert_eq!(
        (pipeline.quotas[0].min, pipeline.quotas[0].max),
        (10, Some(15))
    );
    assert_eq!(
        pipeline.weekly_targets,
        [Some(35), Some(25), Some(25), Some(20), Some(15), None, None]
    );
    assert_eq!(pipeline.calendar.as_deref(), Some("calendar.csv"));
}

#[test]
fn a_broken_pipeline_is_located() {
    let broken = PIPELINE
        .replace("name = \"1\"", "name = \"0\"")
        .replace("follow_up_days = 5", "follow_up_days = 0")
        .replace("classes = [\"0\"]", "classes = [\"9\"]")
        .replace("min = 10", "min = 20")
        .replace("fri = 15", "fry = 15");
    let err = Policy::from_str("p.toml", &format!("{BASE}{broken}")).unwrap_err();
    let found: Vec<(String, String)> = err
        .errors()
        .filter(|d| d.code == "invalid_pipeline")
        .map(|d| (d.key.clone(), d.message.clone()))
        .collect();
    let want = [
        ("pipeline.classes[1].name", "class `0` is named twice"),
        (
            "pipeline.classes[2].follow_up_days",
            "class `key-3`: a follow-up cycle is at least 1 working day",
        ),
        (
            "pipeline.quotas[0].classes",
            "unknown class `9` (the classes: 0, 0, key-3)",
        ),
        (
            "pipeline.quotas[0].classes",
            "a quota names the classes it counts",
        ),
        ("pipeline.quotas[0].min", "min 20 is above max 15"),
        (
            "pipeline.weekly_targets.fry",
            "`fry` is not a weekday: use mon, tue, wed, thu, fri, sat, sun",
        ),
    ];
    let want: Vec<(String, String)> = want
        .iter()
        .map(|(k, m)| (k.to_string(), m.to_string()))
        .collect();
    assert_eq!(found, want);
}

#[test]
fn escalation_steps_come_in_order_and_count_days() {
    let with = |e: &str| {
        format!(
            "{BASE}{}",
            PIPELINE.replace(
                "daily_capacity = 60",
                &format!("daily_capacity = 60\nescalation = {e}")
            )
        )
    };
    let p = Policy::from_str("p.toml", &with("{ remind_after = 2, pool_after = 10 }")).unwrap();
    assert_eq!(p.pipeline.unwrap().escalation, [Some(2), None, Some(10)]);
    for (e, message) in [
        (
            "{ remind_after = 5, manager_after = 3 }",
            "escalation steps come in order: remind_after < manager_after < pool_after",
        ),
        (
            "{ remind_after = 0 }",
            "escalation steps count working days overdue: at least 1",
        ),
    ] {
        let err = Policy::from_str("p.toml", &with(e)).unwrap_err();
        let d = err.errors().find(|d| d.code == "invalid_pipeline").unwrap();
        assert_eq!(
            (d.key.as_str(), d.message.as_str()),
            ("pipeline.escalation", message)
        );
    }
}

const TEAMS: &str = r#"
[ladders.v]
rank_by = "revenue"

[[ladders.v.levels]]
name = "key"
top_share = 0.1

[[ladders.v.levels]]
name = "rest"
rest = true

[teams]
lead01 = ["rep01", "rep02"]
lead02 = ["rep03"]

[assignment]
levels = ["key"]
by_rating = true

[assignment.managers]
mgr01 = { capacity = 20, rating = 5 }
mgr02 = {}
"#;

#[test]
fn teams_and_an_assignment_compile() {
    let p = Policy::from_str("p.toml", &format!("{BASE}{TEAMS}")).unwrap();
    assert_eq!(p.teams.members_of("lead01"), ["rep01", "rep02"]);
    assert_eq!(p.teams.lead_of("rep03"), Some("lead02"));
    let rule = p.assignment.unwrap();
    assert_eq!(
        (rule.ladder.as_str(), rule.levels.as_slice(), rule.by_rating),
        ("v", ["key".to_string()].as_slice(), true)
    );
    let managers: Vec<(&str, Option<usize>, u32)> = rule
        .managers
        .iter()
        .map(|m| (m.name.as_str(), m.capacity, m.rating))
        .collect();
    assert_eq!(managers, [("mgr01", Some(20), 5), ("mgr02", None, 0)]);
}

#[test]
fn broken_teams_and_assignments_are_located() {
    let broken = TEAMS
        .replace(
            "lead02 = [\"rep03\"]",
            "lead02 = [\"rep02\", \"lead02\"]\nlead03 = []",
        )
        .replace("levels = [\"key\"]", "levels = [\"gold\"]")
        .replace("capacity = 20", "capacity = 0");
    let err = Policy::from_str("p.toml", &format!("{BASE}{broken}")).unwrap_err();
    let found: Vec<(&str, &str, &str)> = err
        .errors()
        .filter(|d| d.code == "invalid_teams" || d.code == "invalid_assignment")
        .map(|d| (d.code, d.key.as_str(), d.message.as_str()))
        .collect();
    assert_eq!(
        found,
        [
            (
                "invalid_teams",
                "teams.lead02",
                "`rep02` is already in lead01's team: a member has one lead"
            ),
            (
                "invalid_teams",
                "teams.lead02",
                "`lead02` leads the team it is listed in"
            ),
            (
                "invalid_teams",
                "teams.lead03",
                "team lead `lead03` has no members"
            ),
            (
                "invalid_assignment",
                "assignment.levels",
                "ladder `v` has no level `gold` (its levels: key, rest)"
            ),
            (
                "invalid_assignment",
                "assignment.managers.mgr01",
                "manager `mgr01`: a capacity is at least 1 customer"
            ),
        ]
    );
    assert!(
        err.errors().all(|d| d.location.is_some()),
        "every diagnostic points into the file"
    );
}

#[test]
fn engine_settings_are_checked_where_they_are_written() {
    let engine = |section: &str| {
        format!(
            "{BASE}\n[ladders.v]\n[[ladders.v.levels]]\nname = \"all\"\nrest = true\n[engine]\n{section}"
        )
    };
    let err = Policy::from_str("p.toml", &engine("timeout_seconds = 0\n")).unwrap_err();
    let d = err.errors().find(|d| d.code == "invalid_engine").unwrap();
    assert_eq!(
        (d.key.as_str(), d.message.as_str()),
        ("engine.timeout_seconds", "must be at least 1")
    );
    let ok = Policy::from_str(
        "p.toml",
        &engine("cluster = \"df://10.0.0.5:50050\"\ntimeout_seconds = 90\n"),
    )
    .unwrap();
    assert_eq!(ok.settings.cluster_timeout_seconds, Some(90));
    assert_eq!(
        ok.settings.cluster.map(|c| c.to_string()).as_deref(),
        Some("df://10.0.0.5:50050")
    );
}
