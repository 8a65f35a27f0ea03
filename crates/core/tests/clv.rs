//! The BG/NBD and Gamma-Gamma fits against published results on real data no one here
//! wrote: the CDNOW sample (fixtures/cdnow/SOURCE.md). From the raw transaction log, as of
//! 1997-09-30 in weeks, the parameters must match Fader, Hardie & Lee (2005) and Fader &
//! Hardie's Gamma-Gamma note within 0.01.

use chrono::NaiveDate;
use stratum_core::clv::{
    BgNbd, CustomerSummary, GammaGamma, LifetimeFit, Measure, TimeUnit, lifetime_value, summarise,
};

const LOG: &str = include_str!("fixtures/cdnow/CDNOW_sample.txt");
const SUMMARY: &str = include_str!("fixtures/cdnow/cdnow_customers_summary_with_transactions.csv");

fn cdnow() -> Vec<stratum_core::clv::CustomerSummary> {
    let rows: Vec<(String, NaiveDate, f64)> = LOG
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            // The second column numbers the sample's customers 1..=2357, as the published
            // summary does.
            (
                f[1].to_string(),
                NaiveDate::parse_from_str(f[2], "%Y%m%d").unwrap(),
                f[4].parse().unwrap(),
            )
        })
        .collect();
    let as_of = NaiveDate::from_ymd_opt(1997, 9, 30).unwrap();
    summarise(
        rows.iter().map(|(c, d, a)| (c.as_str(), *d, *a)),
        as_of,
        TimeUnit::Week,
    )
}

#[test]
fn the_summary_from_the_raw_log_matches_the_published_one() {
    let ours = cdnow();
    assert_eq!(ours.len(), 2357);
    let published: Vec<Vec<f64>> = SUMMARY
        .lines()
        .skip(1)
        .map(|l| l.split(',').map(|v| v.parse().unwrap()).collect())
        .collect();
    assert_eq!(published.len(), 2357);
    for (c, p) in ours.iter().zip(&published) {
        assert_eq!(c.customer_id.parse::<f64>().unwrap(), p[0]);
        assert_eq!(f64::from(c.frequency), p[1], "{c:?}");
        assert!((c.recency - p[2]).abs() <= 0.005 + 1e-9, "{c:?} vs {p:?}");
        assert!((c.age - p[3]).abs() <= 0.005 + 1e-9, "{c:?} vs {p:?}");
        assert!((c.monetary - p[4]).abs() <= 0.005 + 1e-9, "{c:?} vs {p:?}");
    }
}

#[test]
fn bgnbd_and_gamma_gamma_match_the_papers() {
    let customers = cdnow();
    let (m, report) = BgNbd::fit(&customers).unwrap();
    let near = |got: f64, want: f64| (got - want).abs() <= 0.01;
    assert!(
        near(m.r, 0.243) && near(m.alpha, 4.414) && near(m.a, 0.793) && near(m.b, 2.426),
        "{m:?}"
    );
    // The paper's log-likelihood is -9582.4.
    assert!((report.log_likelihood - -9582.4).abs() < 0.1, "{report:?}");
    // Standard errors as lifetimes reports them for this fit (r, α, a, b), within 2%.
    for (got, want) in report
        .standard_errors
        .iter()
        .zip([0.0126, 0.3782, 0.1857, 0.7053])
    {
        assert!(
            (got / want - 1.0).abs() < 0.02,
            "{:?}",
            report.standard_errors
        );
    }
    let (g, report) = GammaGamma::fit(&customers).unwrap();
    assert!(
        near(g.p, 6.25) && near(g.q, 3.74) && near(g.v, 15.44),
        "{g:?} {report:?}"
    );
    // No NaN anywhere in the predictions.
    for c in &customers {
        let x = f64::from(c.frequency);
        let alive = m.p_alive(x, c.recency, c.age);
        assert!((0.0..=1.0).contains(&alive), "{c:?}");
        let e = m.expected_purchases(39.0, x, c.recency, c.age).unwrap();
        assert!(e.is_finite() && e >= 0.0, "{c:?}: {e}");
    }
}

const REFERENCE: &str = include_str!("fixtures/cdnow/lifetimes_reference.json");
const MASTER: &str = include_str!("fixtures/cdnow/CDNOW_master.txt");

fn reference() -> serde_json::Value {
    serde_json::from_str(REFERENCE).unwrap()
}

fn close(got: f64, want: f64, tolerance: f64) -> bool {
    (got - want).abs() <= tolerance * want.abs().max(1.0)
}

fn models(v: &serde_json::Value) -> (BgNbd, GammaGamma) {
    let f = |k: &str, p: &str| v[k][p].as_f64().unwrap();
    (
        BgNbd {
            r: f("bgnbd", "r"),
            alpha: f("bgnbd", "alpha"),
            a: f("bgnbd", "a"),
            b: f("bgnbd", "b"),
        },
        GammaGamma {
            p: f("gamma_gamma", "p"),
            q: f("gamma_gamma", "q"),
            v: f("gamma_gamma", "v"),
        },
    )
}

/// Each reference customer's p_alive, expected purchases in 39 weeks, expected spend and
/// 12-month CLV, from `models`, against the frozen values within `tolerance` (relative).
fn check_predictions(
    reference: &serde_json::Value,
    bg: &BgNbd,
    gg: &GammaGamma,
    tolerance: f64,
) -> usize {
    let weeks_per_month = REFERENCE_WEEKS_PER_MONTH;
    let mut checked = 0;
    for p in reference["predictions"].as_array().unwrap() {
        let c = CustomerSummary {
            customer_id: p["customer_id"].as_str().unwrap().to_string(),
            frequency: p["frequency"].as_u64().unwrap() as u32,
            recency: p["recency"].as_f64().unwrap(),
            age: p["T"].as_f64().unwrap(),
            monetary: p["monetary"].as_f64().unwrap(),
        };
        let x = f64::from(c.frequency);
        let ours = [
            ("p_alive", bg.p_alive(x, c.recency, c.age)),
            (
                "expected_purchases",
                bg.expected_purchases(39.0, x, c.recency, c.age).unwrap(),
            ),
            ("expected_spend", gg.expected_spend(x, c.monetary)),
            (
                "clv",
                lifetime_value(bg, gg, &c, 12, weeks_per_month, 0.01).unwrap(),
            ),
        ];
        for (name, got) in ours {
            let want = p[name].as_f64().unwrap();
            assert!(
                close(got, want, tolerance),
                "customer {}: {name} {got} vs lifetimes {want}",
                c.customer_id
            );
            checked += 1;
        }
    }
    checked
}

/// lifetimes converts months to weeks with 4.345 in its CLV; the reference uses the same.
const REFERENCE_WEEKS_PER_MONTH: f64 = 4.345;

#[test]
fn conditional_expectations_match_the_paper_and_lifetimes() {
    let reference = reference();
    assert_eq!(reference["weeks_per_month"], 4.345);
    // The paper's worked example (Fader, Hardie & Lee 2005, section 5): a customer with 2
    // repeat purchases, the last at 30.43 weeks, observed for 38.86 weeks, is expected to
    // make 1.226 purchases in the next 39 weeks.
    let paper = BgNbd {
        r: 0.243,
        alpha: 4.414,
        a: 0.793,
        b: 2.426,
    };
    let e = paper.expected_purchases(39.0, 2.0, 30.43, 38.86).unwrap();
    assert!((e - 1.226).abs() < 1e-3, "{e}");

    // The same formulas as lifetimes, given lifetimes' parameters: to 1e-9.
    let sample = &reference["sample"];
    let (bg, gg) = models(sample);
    assert_eq!(check_predictions(sample, &bg, &gg, 1e-9), 13 * 4);

    // Our own fit to the published summary predicts the same to 1e-3.
    let published: Vec<CustomerSummary> = SUMMARY
        .lines()
        .skip(1)
        .map(|l| {
            let v: Vec<f64> = l.split(',').map(|v| v.parse().unwrap()).collect();
            CustomerSummary {
                customer_id: v[0].to_string(),
                frequency: v[1] as u32,
                recency: v[2],
                age: v[3],
                monetary: v[4],
            }
        })
        .collect();
    let fit = LifetimeFit::fit(&published, TimeUnit::Week, true).unwrap();
    let (ours_gg, _) = fit.spend.clone().unwrap();
    check_predictions(sample, &fit.purchases, &ours_gg, 1e-3);
}

/// The full CDNOW master log (23,570 customers), summarised and fitted here, against what
/// lifetimes computed from the same log (bench/clv/lifetimes_reference.py).
#[test]
fn the_master_log_matches_lifetimes() {
    let reference = reference();
    let master = &reference["master"];
    let rows: Vec<(String, NaiveDate, f64)> = MASTER
        .lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (
                f[0].to_string(),
                NaiveDate::parse_from_str(f[1], "%Y%m%d").unwrap(),
                f[3].parse().unwrap(),
            )
        })
        .collect();
    let as_of = NaiveDate::from_ymd_opt(1997, 9, 30).unwrap();
    let customers = summarise(
        rows.iter().map(|(c, d, a)| (c.as_str(), *d, *a)),
        as_of,
        TimeUnit::Week,
    );
    assert_eq!(customers.len(), 23_570);
    assert_eq!(master["customers"], 23_570);
    let totals = &master["totals"];
    let frequency: u64 = customers.iter().map(|c| u64::from(c.frequency)).sum();
    assert_eq!(frequency, totals["frequency"].as_u64().unwrap());
    for (name, ours) in [
        ("recency", customers.iter().map(|c| c.recency).sum::<f64>()),
        ("T", customers.iter().map(|c| c.age).sum::<f64>()),
        (
            "monetary",
            customers.iter().map(|c| c.monetary).sum::<f64>(),
        ),
    ] {
        let want = totals[name].as_f64().unwrap();
        assert!(close(ours, want, 1e-9), "{name}: {ours} vs {want}");
    }

    let fit = LifetimeFit::fit(&customers, TimeUnit::Week, true).unwrap();
    let (theirs_bg, theirs_gg) = models(master);
    let (ours_gg, _) = fit.spend.clone().unwrap();
    let ours = fit.purchases;
    for (name, got, want) in [
        ("r", ours.r, theirs_bg.r),
        ("alpha", ours.alpha, theirs_bg.alpha),
        ("a", ours.a, theirs_bg.a),
        ("b", ours.b, theirs_bg.b),
        ("p", ours_gg.p, theirs_gg.p),
        ("q", ours_gg.q, theirs_gg.q),
        ("v", ours_gg.v, theirs_gg.v),
    ] {
        assert!(
            close(got, want, 1e-3),
            "{name}: ours {got}, lifetimes {want}"
        );
    }
    let checked = check_predictions(master, &ours, &ours_gg, 1e-3);
    assert_eq!(checked, 26 * 4);
    // And every customer's predictions are numbers, the same whether made one by one or
    // for everyone at once on every core.
    for m in [
        Measure::PAlive,
        Measure::ExpectedPurchases { horizon: 39.0 },
        Measure::Clv {
            months: 12,
            discount: 0.01,
        },
    ] {
        let all = fit.measure_all(m, &customers).unwrap();
        assert_eq!(all.len(), customers.len());
        for (c, &v) in customers.iter().zip(&all) {
            assert_eq!(v, fit.measure(m, c).unwrap(), "{c:?} {m:?}");
            assert!(v.is_finite() && v >= 0.0, "{c:?} {m:?}: {v}");
        }
    }
    // A measure that fails names the customer: expected purchases are undefined at a = 1.
    let mut broken = fit.clone();
    broken.purchases.a = 1.0;
    let (index, _) = broken
        .measure_all(Measure::ExpectedPurchases { horizon: 39.0 }, &customers)
        .unwrap_err();
    assert_eq!(index, 0, "the first customer fails first");
}
