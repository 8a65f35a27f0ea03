//! Customer-manager assignment (客户经理制): every customer of the levels a policy names gets
//! a dedicated manager, balanced by count (within one customer of the ideal) and, among
//! equally loaded managers, by value, within each manager's capacity — and stable: a
//! customer keeps its manager unless the manager left, was over its share, or the customer
//! is new; each move says why.

use std::collections::HashMap;

/// `[assignment]`, checked: the levels whose customers get a dedicated manager, and the
/// managers.
#[derive(Debug, Clone, PartialEq)]
pub struct AssignmentRule {
    pub ladder: String,
    pub levels: Vec<String>,
    pub by_rating: bool,
    pub managers: Vec<Manager>,
}

/// A customer to assign.
#[derive(Debug, Clone, PartialEq)]
pub struct Assignee {
    pub customer_id: String,
    /// The customer's level on the ladder (0: the top); higher levels are placed first.
    pub level: usize,
    /// Among customers of one level, the more valuable are placed first.
    pub value: f64,
    /// The manager it has now, if any.
    pub manager: Option<String>,
}

/// A manager who takes customers.
#[derive(Debug, Clone, PartialEq)]
pub struct Manager {
    pub name: String,
    /// The most customers the manager may hold.
    pub capacity: Option<usize>,
    /// How well the manager is rated (higher is better): with `by_rating`, the most
    /// valuable customers who move go to the best-rated managers first.
    pub rating: u32,
}

/// Why a customer has the manager it is given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Why {
    /// Its manager stays.
    Kept,
    /// It had none.
    New,
    /// Its manager is no longer in the team (or no longer takes customers).
    ManagerLeft { from: String },
    /// Its manager held more than its share.
    Rebalanced { from: String },
}

impl std::fmt::Display for Why {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Why::Kept => f.write_str("kept"),
            Why::New => f.write_str("new"),
            Why::ManagerLeft { from } => write!(f, "{from} is not among the managers"),
            Why::Rebalanced { from } => write!(f, "rebalanced from {from}"),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Assignment {
    pub customer_id: String,
    pub manager: String,
    pub why: Why,
}

/// Why nobody could take some customers.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AssignError {
    #[error("no manager to assign customers to")]
    NoManagers,
    #[error("{customers} customers but the managers' capacities add up to {capacity}")]
    OverCapacity { customers: usize, capacity: usize },
}

/// Assigns every customer. Each manager's share is the ideal count (customers ÷ managers,
/// the remainder going to those holding most now, so fewer move), capped by its capacity
/// (what a full manager cannot take goes to the others). "Most valuable" is the highest
/// level, then the highest value. Managers above their share keep their most valuable
/// customers and give up the rest; the customers given up, the new ones and those of
/// managers who left are placed most valuable first, each with the manager furthest below
/// its share, then the one holding the least value, then by name. With `by_rating`, the
/// best-rated manager with room comes first, so the highest levels go to the best-rated
/// managers; a customer who may stay still stays.
pub fn assign(
    customers: &[Assignee],
    managers: &[Manager],
    by_rating: bool,
) -> Result<Vec<Assignment>, AssignError> {
    if managers.is_empty() {
        return Err(AssignError::NoManagers);
    }
    let n = customers.len();
    if let Some(capacity) = managers
        .iter()
        .map(|m| m.capacity)
        .sum::<Option<usize>>()
        .filter(|&c| c < n)
    {
        return Err(AssignError::OverCapacity {
            customers: n,
            capacity,
        });
    }
    let index: HashMap<&str, usize> = managers
        .iter()
        .enumerate()
        .map(|(i, m)| (m.name.as_str(), i))
        .collect();
    let holding = |i: usize| {
        customers
            .iter()
            .filter(|c| c.manager.as_deref() == Some(managers[i].name.as_str()))
            .count()
    };
    // Shares: the ideal count, the remainder to those holding most now; then capacities,
    // the excess handed on to managers with room (fewest first).
    let m = managers.len();
    let mut order: Vec<usize> = (0..m).collect();
    order.sort_by(|&a, &b| holding(b).cmp(&holding(a)).then(a.cmp(&b)));
    let mut share = vec![n / m; m];
    for &i in order.iter().take(n % m) {
        share[i] += 1;
    }
    loop {
        let mut excess = 0;
        for (i, mgr) in managers.iter().enumerate() {
            if let Some(cap) = mgr.capacity
                && share[i] > cap
            {
                excess += share[i] - cap;
                share[i] = cap;
            }
        }
        if excess == 0 {
            break;
        }
        let mut room: Vec<usize> = (0..m)
            .filter(|&i| managers[i].capacity.is_none_or(|c| share[i] < c))
            .collect();
        room.sort_by(|&a, &b| share[a].cmp(&share[b]).then(a.cmp(&b)));
        for i in room.into_iter().cycle().take(excess) {
            share[i] += 1;
        }
    }
    // Who stays: by manager, most valuable first, up to the share.
    let mut kept: Vec<Option<usize>> = vec![None; n];
    let mut count = vec![0usize; m];
    let mut load = vec![0f64; m];
    let mut by_value: Vec<usize> = (0..n).collect();
    by_value.sort_by(|&a, &b| {
        customers[a]
            .level
            .cmp(&customers[b].level)
            .then(customers[b].value.total_cmp(&customers[a].value))
            .then(customers[a].customer_id.cmp(&customers[b].customer_id))
    });
    for &c in &by_value {
        if let Some(&i) = customers[c].manager.as_deref().and_then(|n| index.get(n))
            && count[i] < share[i]
        {
            kept[c] = Some(i);
            count[i] += 1;
            load[i] += customers[c].value;
        }
    }
    let mut out: Vec<Assignment> = Vec::with_capacity(n);
    let mut placed: Vec<Option<(usize, Why)>> = vec![None; n];
    for &c in &by_value {
        if let Some(i) = kept[c] {
            placed[c] = Some((i, Why::Kept));
            continue;
        }
        let i = (0..m)
            .filter(|&i| count[i] < share[i])
            .min_by(|&a, &b| {
                let rated = if by_rating {
                    managers[b].rating.cmp(&managers[a].rating)
                } else {
                    std::cmp::Ordering::Equal
                };
                rated
                    .then((share[b] - count[b]).cmp(&(share[a] - count[a])))
                    .then(load[a].total_cmp(&load[b]))
                    .then(a.cmp(&b))
            })
            .expect("the shares add up to the customers");
        count[i] += 1;
        load[i] += customers[c].value;
        let why = match &customers[c].manager {
            None => Why::New,
            Some(from) if index.contains_key(from.as_str()) => {
                Why::Rebalanced { from: from.clone() }
            }
            Some(from) => Why::ManagerLeft { from: from.clone() },
        };
        placed[c] = Some((i, why));
    }
    for (c, p) in placed.into_iter().enumerate() {
        let (i, why) = p.expect("everyone placed");
        out.push(Assignment {
            customer_id: customers[c].customer_id.clone(),
            manager: managers[i].name.clone(),
            why,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn team(names: &[&str]) -> Vec<Manager> {
        names
            .iter()
            .map(|n| Manager {
                name: n.to_string(),
                capacity: None,
                rating: 0,
            })
            .collect()
    }

    fn customers(n: usize) -> Vec<Assignee> {
        (0..n)
            .map(|i| Assignee {
                customer_id: format!("C{i:03}"),
                level: 0,
                value: ((i * 37) % 101) as f64 * 100.0,
                manager: None,
            })
            .collect()
    }

    fn counts(a: &[Assignment], managers: &[Manager]) -> Vec<usize> {
        managers
            .iter()
            .map(|m| a.iter().filter(|x| x.manager == m.name).count())
            .collect()
    }

    fn apply(customers: &mut [Assignee], a: &[Assignment]) {
        for (c, x) in customers.iter_mut().zip(a) {
            assert_eq!(c.customer_id, x.customer_id);
            c.manager = Some(x.manager.clone());
        }
    }

    #[test]
    fn balanced_within_one_and_by_value_among_equals() {
        let managers = team(&["wang", "li", "zhao"]);
        let mut cs = customers(100);
        let a = assign(&cs, &managers, false).unwrap();
        let n = counts(&a, &managers);
        assert_eq!(n.iter().sum::<usize>(), 100);
        assert!(
            n.iter().max().unwrap() - n.iter().min().unwrap() <= 1,
            "{n:?}"
        );
        assert!(a.iter().all(|x| x.why == Why::New));
        // Value spread: within a tenth of the mean per manager.
        let value = |m: &str| {
            a.iter()
                .zip(&cs)
                .filter(|(x, _)| x.manager == m)
                .map(|(_, c)| c.value)
                .sum::<f64>()
        };
        let mean = cs.iter().map(|c| c.value).sum::<f64>() / 3.0;
        for m in ["wang", "li", "zhao"] {
            assert!(
                (value(m) - mean).abs() < mean * 0.1,
                "{m}: {} vs {mean}",
                value(m)
            );
        }
        // Again with the same team: nobody moves.
        apply(&mut cs, &a);
        let again = assign(&cs, &managers, false).unwrap();
        assert!(again.iter().all(|x| x.why == Why::Kept));
    }

    #[test]
    fn a_leaving_or_joining_manager_moves_the_fewest_customers() {
        let managers = team(&["wang", "li", "zhao", "sun"]);
        let mut cs = customers(100);
        let first = assign(&cs, &managers, false).unwrap();
        apply(&mut cs, &first);
        // Sun leaves: only sun's 25 move, spread within one over the three left.
        let three = team(&["wang", "li", "zhao"]);
        let a = assign(&cs, &three, false).unwrap();
        let moved: Vec<&Assignment> = a.iter().filter(|x| x.why != Why::Kept).collect();
        assert_eq!(moved.len(), 25);
        assert!(
            moved
                .iter()
                .all(|x| x.why == Why::ManagerLeft { from: "sun".into() })
        );
        let n = counts(&a, &three);
        assert!(
            n.iter().max().unwrap() - n.iter().min().unwrap() <= 1,
            "{n:?}"
        );
        apply(&mut cs, &a);
        // Zhou joins the three: 25 move to zhou (the ideal 25 each), the rest stay; each
        // giver keeps its most valuable customers.
        let four = team(&["wang", "li", "zhao", "zhou"]);
        let b = assign(&cs, &four, false).unwrap();
        let moved: Vec<&Assignment> = b.iter().filter(|x| x.why != Why::Kept).collect();
        assert_eq!(moved.len(), 25);
        assert!(moved.iter().all(|x| x.manager == "zhou"));
        assert!(
            moved
                .iter()
                .all(|x| matches!(x.why, Why::Rebalanced { .. }))
        );
        assert_eq!(counts(&b, &four), [25, 25, 25, 25]);
        for giver in ["wang", "li", "zhao"] {
            let value_of = |id: &str| cs.iter().find(|c| c.customer_id == id).unwrap().value;
            let kept_min = b
                .iter()
                .filter(|x| x.manager == giver)
                .map(|x| value_of(&x.customer_id))
                .fold(f64::MAX, f64::min);
            let gave_max = moved
                .iter()
                .filter(|x| x.why == Why::Rebalanced { from: giver.into() })
                .map(|x| value_of(&x.customer_id))
                .fold(f64::MIN, f64::max);
            assert!(
                kept_min >= gave_max,
                "{giver} gave away more value than it kept"
            );
        }
    }

    #[test]
    fn capacities_hold_and_too_little_room_is_an_error() {
        let mut managers = team(&["wang", "li", "zhao"]);
        managers[0].capacity = Some(10);
        let cs = customers(100);
        let a = assign(&cs, &managers, false).unwrap();
        assert_eq!(counts(&a, &managers), [10, 45, 45]);
        managers[1].capacity = Some(40);
        managers[2].capacity = Some(40);
        assert_eq!(
            assign(&cs, &managers, false),
            Err(AssignError::OverCapacity {
                customers: 100,
                capacity: 90
            })
        );
        assert_eq!(assign(&cs, &[], false), Err(AssignError::NoManagers));
    }

    #[test]
    fn by_rating_the_most_valuable_go_to_the_best_rated() {
        let mut managers = team(&["wang", "li", "zhao"]);
        managers[0].rating = 1;
        managers[1].rating = 5;
        managers[2].rating = 3;
        let mut cs = customers(99);
        let a = assign(&cs, &managers, true).unwrap();
        assert_eq!(counts(&a, &managers), [33, 33, 33]);
        let mut by_value: Vec<(f64, &str)> = cs
            .iter()
            .zip(&a)
            .map(|(c, x)| (c.value, x.manager.as_str()))
            .collect();
        by_value.sort_by(|x, y| y.0.total_cmp(&x.0));
        let managers_in_value_order: Vec<&str> = by_value.iter().map(|(_, m)| *m).collect();
        assert!(managers_in_value_order[..33].iter().all(|m| *m == "li"));
        assert!(managers_in_value_order[33..66].iter().all(|m| *m == "zhao"));
        assert!(managers_in_value_order[66..].iter().all(|m| *m == "wang"));
        // Stable all the same: a second pass moves nobody.
        apply(&mut cs, &a);
        assert!(
            assign(&cs, &managers, true)
                .unwrap()
                .iter()
                .all(|x| x.why == Why::Kept)
        );
    }
}
