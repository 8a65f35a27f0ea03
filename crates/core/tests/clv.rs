//! The BG/NBD and Gamma-Gamma fits against published results on real data no one here
//! wrote: the CDNOW sample (fixtures/cdnow/SOURCE.md). From the raw transaction log, as of
//! 1997-09-30 in weeks, the parameters must match Fader, Hardie & Lee (2005) and Fader &
//! Hardie's Gamma-Gamma note within 0.01.

use chrono::NaiveDate;
use stratum_core::clv::{BgNbd, GammaGamma, TimeUnit, summarise};

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
