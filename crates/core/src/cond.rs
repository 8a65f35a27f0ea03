//! Level conditions: a small, checked subset of SQL boolean expressions over metric and score
//! names (`assets_90d >= 1000000 OR (family_assets >= 800000 AND has_tag('family_card'))`).
//! Parsed with sqlparser so the syntax matches metric expressions; evaluated here in Rust so
//! every placement can be explained atom by atom.

use sqlparser::ast::{self, BinaryOperator, Expr, UnaryOperator};
use sqlparser::dialect::GenericDialect;
use sqlparser::parser::Parser;

use crate::frame::{Frame, Value, fmt_num};
use crate::policy::Literal;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl CmpOp {
    pub fn symbol(self) -> &'static str {
        match self {
            Self::Eq => "=",
            Self::Ne => "<>",
            Self::Lt => "<",
            Self::Le => "<=",
            Self::Gt => ">",
            Self::Ge => ">=",
        }
    }
    fn flip(self) -> Self {
        match self {
            Self::Lt => Self::Gt,
            Self::Le => Self::Ge,
            Self::Gt => Self::Lt,
            Self::Ge => Self::Le,
            other => other,
        }
    }
    fn holds(self, ord: std::cmp::Ordering) -> bool {
        use std::cmp::Ordering::*;
        match self {
            Self::Eq => ord == Equal,
            Self::Ne => ord != Equal,
            Self::Lt => ord == Less,
            Self::Le => ord != Greater,
            Self::Gt => ord == Greater,
            Self::Ge => ord != Less,
        }
    }
}

/// A reference to a metric or score; `col` is filled in by [`Cond::resolve`].
#[derive(Debug, Clone, PartialEq)]
pub struct Name {
    pub name: String,
    pub col: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Cond {
    True,
    And(Vec<Cond>),
    Or(Vec<Cond>),
    Not(Box<Cond>),
    Cmp {
        name: Name,
        op: CmpOp,
        value: Literal,
    },
    Between {
        name: Name,
        low: f64,
        high: f64,
        negated: bool,
    },
    In {
        name: Name,
        values: Vec<Literal>,
        negated: bool,
    },
    IsNull {
        name: Name,
        negated: bool,
    },
    HasTag(String),
}

/// The largest expression or condition a policy may hold, in bytes.
pub const MAX_EXPRESSION_BYTES: usize = 8 * 1024;
/// The most operators (`+`, `AND`, `=`, …) in one expression: each is a level of the tree
/// the query planner walks recursively, so a longer chain could overflow its stack.
pub const MAX_EXPRESSION_OPERATORS: usize = 256;
/// The deepest nesting of parentheses in one expression.
pub const MAX_EXPRESSION_NESTING: usize = 32;

/// Refuses an expression too large or too deep to plan safely (limits above); runs before
/// anything parses it into a tree, and never recurses.
pub fn check_size(text: &str) -> Result<(), String> {
    use sqlparser::keywords::Keyword;
    use sqlparser::tokenizer::{Token, Tokenizer};
    if text.len() > MAX_EXPRESSION_BYTES {
        return Err(format!(
            "the expression is {} bytes long; at most {MAX_EXPRESSION_BYTES} are allowed (split it into metrics that build on each other)",
            text.len()
        ));
    }
    let tokens = Tokenizer::new(&GenericDialect {}, text)
        .tokenize()
        .map_err(|e| format!("cannot read expression: {e}"))?;
    let (mut operators, mut depth, mut deepest) = (0usize, 0usize, 0usize);
    for t in &tokens {
        match t {
            Token::LParen => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            Token::RParen => depth = depth.saturating_sub(1),
            Token::Plus
            | Token::Minus
            | Token::Mul
            | Token::Div
            | Token::Mod
            | Token::StringConcat
            | Token::Eq
            | Token::Neq
            | Token::Lt
            | Token::Gt
            | Token::LtEq
            | Token::GtEq => operators += 1,
            Token::Word(w)
                if matches!(
                    w.keyword,
                    Keyword::AND | Keyword::OR | Keyword::NOT | Keyword::WHEN
                ) =>
            {
                operators += 1
            }
            _ => {}
        }
    }
    if operators > MAX_EXPRESSION_OPERATORS {
        return Err(format!(
            "the expression has {operators} operators; at most {MAX_EXPRESSION_OPERATORS} are allowed (split it into metrics that build on each other)"
        ));
    }
    if deepest > MAX_EXPRESSION_NESTING {
        return Err(format!(
            "the expression nests parentheses {deepest} deep; at most {MAX_EXPRESSION_NESTING} are allowed"
        ));
    }
    Ok(())
}

/// Parses a condition. Errors are messages for people, without location (the caller adds it).
pub fn parse_condition(text: &str) -> Result<Cond, String> {
    check_size(text)?;
    let dialect = GenericDialect {};
    let mut parser = Parser::new(&dialect)
        .try_with_sql(text)
        .map_err(|e| format!("cannot read condition: {e}"))?;
    let expr = parser
        .parse_expr()
        .map_err(|e| format!("cannot read condition: {e}"))?;
    if parser.peek_token().token != sqlparser::tokenizer::Token::EOF {
        return Err(format!(
            "unexpected `{}` after the condition",
            parser.peek_token().token
        ));
    }
    convert(&expr)
}

fn name_of(expr: &Expr) -> Option<String> {
    match expr {
        Expr::Identifier(id) => Some(id.value.clone()),
        Expr::Nested(inner) => name_of(inner),
        _ => None,
    }
}

fn literal_of(expr: &Expr) -> Option<Literal> {
    match expr {
        Expr::Value(v) => match &v.value {
            ast::Value::Number(n, _) => n.parse().ok().map(Literal::Num),
            ast::Value::SingleQuotedString(s) | ast::Value::DoubleQuotedString(s) => {
                Some(Literal::Text(s.clone()))
            }
            ast::Value::Boolean(b) => Some(Literal::Num(if *b { 1.0 } else { 0.0 })),
            _ => None,
        },
        Expr::UnaryOp {
            op: UnaryOperator::Minus,
            expr,
        } => match literal_of(expr)? {
            Literal::Num(n) => Some(Literal::Num(-n)),
            Literal::Text(_) => None,
        },
        Expr::UnaryOp {
            op: UnaryOperator::Plus,
            expr,
        } => literal_of(expr),
        Expr::Nested(inner) => literal_of(inner),
        _ => None,
    }
}

fn number_of(expr: &Expr) -> Result<f64, String> {
    match literal_of(expr) {
        Some(Literal::Num(n)) => Ok(n),
        _ => Err(format!("`{expr}` must be a number")),
    }
}

fn named(name: String) -> Name {
    Name {
        name,
        col: usize::MAX,
    }
}

fn convert(expr: &Expr) -> Result<Cond, String> {
    match expr {
        Expr::Nested(inner) => convert(inner),
        Expr::BinaryOp { left, op, right } => match op {
            BinaryOperator::And => {
                let mut parts = Vec::new();
                for side in [left, right] {
                    match convert(side)? {
                        Cond::And(inner) => parts.extend(inner),
                        other => parts.push(other),
                    }
                }
                Ok(Cond::And(parts))
            }
            BinaryOperator::Or => {
                let mut parts = Vec::new();
                for side in [left, right] {
                    match convert(side)? {
                        Cond::Or(inner) => parts.extend(inner),
                        other => parts.push(other),
                    }
                }
                Ok(Cond::Or(parts))
            }
            _ => {
                let op = match op {
                    BinaryOperator::Eq => CmpOp::Eq,
                    BinaryOperator::NotEq => CmpOp::Ne,
                    BinaryOperator::Lt => CmpOp::Lt,
                    BinaryOperator::LtEq => CmpOp::Le,
                    BinaryOperator::Gt => CmpOp::Gt,
                    BinaryOperator::GtEq => CmpOp::Ge,
                    other => {
                        return Err(format!(
                            "operator `{other}` is not allowed in a condition; define a metric for arithmetic"
                        ));
                    }
                };
                match (
                    name_of(left),
                    literal_of(right),
                    name_of(right),
                    literal_of(left),
                ) {
                    (Some(name), Some(value), _, _) => Ok(Cond::Cmp {
                        name: named(name),
                        op,
                        value,
                    }),
                    (_, _, Some(name), Some(value)) => Ok(Cond::Cmp {
                        name: named(name),
                        op: op.flip(),
                        value,
                    }),
                    _ => Err(format!(
                        "`{expr}`: compare a metric or score name with a number or 'text'"
                    )),
                }
            }
        },
        Expr::UnaryOp {
            op: UnaryOperator::Not,
            expr,
        } => Ok(Cond::Not(Box::new(convert(expr)?))),
        Expr::Between {
            expr: target,
            negated,
            low,
            high,
        } => {
            let name = name_of(target)
                .ok_or_else(|| format!("`{target}` must be a metric or score name"))?;
            Ok(Cond::Between {
                name: named(name),
                low: number_of(low)?,
                high: number_of(high)?,
                negated: *negated,
            })
        }
        Expr::InList {
            expr: target,
            list,
            negated,
        } => {
            let name = name_of(target)
                .ok_or_else(|| format!("`{target}` must be a metric or score name"))?;
            let values = list
                .iter()
                .map(|e| literal_of(e).ok_or_else(|| format!("`{e}` must be a number or 'text'")))
                .collect::<Result<_, _>>()?;
            Ok(Cond::In {
                name: named(name),
                values,
                negated: *negated,
            })
        }
        Expr::IsNull(target) | Expr::IsNotNull(target) => {
            let name = name_of(target)
                .ok_or_else(|| format!("`{target}` must be a metric or score name"))?;
            Ok(Cond::IsNull {
                name: named(name),
                negated: matches!(expr, Expr::IsNotNull(_)),
            })
        }
        Expr::Value(v) if matches!(v.value, ast::Value::Boolean(true)) => Ok(Cond::True),
        Expr::Function(f) if f.name.to_string().eq_ignore_ascii_case("has_tag") => {
            let arg = match &f.args {
                ast::FunctionArguments::List(list) if list.args.len() == 1 => match &list.args[0] {
                    ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(e)) => literal_of(e),
                    _ => None,
                },
                _ => None,
            };
            match arg {
                Some(Literal::Text(tag)) => Ok(Cond::HasTag(tag)),
                _ => Err("has_tag takes one quoted tag, e.g. has_tag('blacklist')".into()),
            }
        }
        Expr::Identifier(id) => Err(format!(
            "`{}` alone is not a condition; compare it, e.g. `{} >= 1`",
            id.value, id.value
        )),
        other => Err(format!("`{other}` is not supported in a condition")),
    }
}

/// Half-open or closed numeric range on one metric, used by lint and explanations.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Interval {
    /// (bound, inclusive)
    pub low: Option<(f64, bool)>,
    pub high: Option<(f64, bool)>,
}

impl Interval {
    pub const ALL: Interval = Interval {
        low: None,
        high: None,
    };

    fn intersect(self, other: Interval) -> Interval {
        let low = match (self.low, other.low) {
            (None, x) | (x, None) => x,
            (Some(a), Some(b)) => Some(if a.0 > b.0 || (a.0 == b.0 && !a.1) {
                a
            } else {
                b
            }),
        };
        let high = match (self.high, other.high) {
            (None, x) | (x, None) => x,
            (Some(a), Some(b)) => Some(if a.0 < b.0 || (a.0 == b.0 && !a.1) {
                a
            } else {
                b
            }),
        };
        Interval { low, high }
    }

    pub fn is_empty(&self) -> bool {
        match (self.low, self.high) {
            (Some((l, li)), Some((h, hi))) => l > h || (l == h && !(li && hi)),
            _ => false,
        }
    }

    pub fn describe(&self) -> String {
        match (self.low, self.high) {
            (None, None) => "any value".into(),
            (Some((l, true)), None) => format!(">= {}", fmt_num(l)),
            (Some((l, false)), None) => format!("> {}", fmt_num(l)),
            (None, Some((h, true))) => format!("<= {}", fmt_num(h)),
            (None, Some((h, false))) => format!("< {}", fmt_num(h)),
            (Some((l, li)), Some((h, hi))) => format!(
                "{}{}, {}{}",
                if li { "[" } else { "(" },
                fmt_num(l),
                fmt_num(h),
                if hi { "]" } else { ")" }
            ),
        }
    }
}

/// What a customer lacks to satisfy a condition.
#[derive(Debug, Clone, PartialEq)]
pub struct Need {
    pub name: String,
    pub has: Option<f64>,
    pub op: CmpOp,
    pub target: f64,
    /// How much more (positive) or less (negative) the metric must be.
    pub delta: Option<f64>,
}

impl Cond {
    /// Every metric or score name the condition reads.
    pub fn names(&self) -> Vec<&str> {
        let mut out = Vec::new();
        self.visit_names(&mut |n: &Name| out.push(n.name.as_str()));
        out
    }

    fn visit_names<'a>(&'a self, f: &mut impl FnMut(&'a Name)) {
        match self {
            Cond::True | Cond::HasTag(_) => {}
            Cond::And(v) | Cond::Or(v) => v.iter().for_each(|c| c.visit_names(f)),
            Cond::Not(c) => c.visit_names(f),
            Cond::Cmp { name, .. }
            | Cond::Between { name, .. }
            | Cond::In { name, .. }
            | Cond::IsNull { name, .. } => f(name),
        }
    }

    fn visit_names_mut(
        &mut self,
        f: &mut impl FnMut(&mut Name) -> Result<(), String>,
    ) -> Result<(), String> {
        match self {
            Cond::True | Cond::HasTag(_) => Ok(()),
            Cond::And(v) | Cond::Or(v) => v.iter_mut().try_for_each(|c| c.visit_names_mut(f)),
            Cond::Not(c) => c.visit_names_mut(f),
            Cond::Cmp { name, .. }
            | Cond::Between { name, .. }
            | Cond::In { name, .. }
            | Cond::IsNull { name, .. } => f(name),
        }
    }

    /// Binds names to frame columns and checks that numbers are compared with numbers.
    pub fn resolve(&mut self, frame: &Frame) -> Result<(), String> {
        // Type checks need the literal beside the name, so walk the atoms directly.
        self.visit_names_mut(&mut |n| {
            n.col = frame
                .index_of(&n.name)
                .ok_or_else(|| format!("unknown metric or score `{}`", n.name))?;
            Ok(())
        })?;
        self.check_types(frame)
    }

    fn check_types(&self, frame: &Frame) -> Result<(), String> {
        let check = |name: &Name, lit: &Literal| -> Result<(), String> {
            let col = frame.column_at(name.col);
            match (col.kind(), lit) {
                ("number", Literal::Text(t)) => Err(format!(
                    "`{}` is a number but is compared with text '{t}'",
                    name.name
                )),
                ("text", Literal::Num(n)) => Err(format!(
                    "`{}` is text but is compared with the number {}",
                    name.name,
                    fmt_num(*n)
                )),
                _ => Ok(()),
            }
        };
        match self {
            Cond::True | Cond::HasTag(_) | Cond::IsNull { .. } => Ok(()),
            Cond::And(v) | Cond::Or(v) => v.iter().try_for_each(|c| c.check_types(frame)),
            Cond::Not(c) => c.check_types(frame),
            Cond::Cmp { name, value, .. } => check(name, value),
            Cond::Between { name, low, .. } => check(name, &Literal::Num(*low)),
            Cond::In { name, values, .. } => values.iter().try_for_each(|v| check(name, v)),
        }
    }

    /// Evaluates for one row. Comparisons with null are false (and so `NOT` of them is true).
    pub fn eval(&self, frame: &Frame, row: usize) -> bool {
        match self {
            Cond::True => true,
            Cond::And(v) => v.iter().all(|c| c.eval(frame, row)),
            Cond::Or(v) => v.iter().any(|c| c.eval(frame, row)),
            Cond::Not(c) => !c.eval(frame, row),
            Cond::Cmp { name, op, value } => {
                compare(frame.column_at(name.col).value(row), value).is_some_and(|o| op.holds(o))
            }
            Cond::Between {
                name,
                low,
                high,
                negated,
            } => match frame.column_at(name.col).num(row) {
                Some(v) => (v >= *low && v <= *high) != *negated,
                None => false,
            },
            Cond::In {
                name,
                values,
                negated,
            } => {
                let cell = frame.column_at(name.col).value(row);
                if cell == Value::Null {
                    return false;
                }
                values
                    .iter()
                    .any(|v| compare(cell, v) == Some(std::cmp::Ordering::Equal))
                    != *negated
            }
            Cond::IsNull { name, negated } => {
                (frame.column_at(name.col).value(row) == Value::Null) != *negated
            }
            Cond::HasTag(tag) => frame.tags(row).iter().any(|t| t == tag),
        }
    }

    /// Atoms that made the condition true for this row, rendered with the row's values.
    pub fn reasons(&self, frame: &Frame, row: usize) -> Vec<String> {
        match self {
            Cond::And(v) => v.iter().flat_map(|c| c.reasons(frame, row)).collect(),
            Cond::Or(v) => v
                .iter()
                .find(|c| c.eval(frame, row))
                .map(|c| c.reasons(frame, row))
                .unwrap_or_default(),
            atom => vec![atom.render(Some((frame, row)))],
        }
    }

    /// Text of the condition; with a row, each name is followed by its value.
    pub fn render(&self, row: Option<(&Frame, usize)>) -> String {
        let name_text = |n: &Name| match row {
            Some((frame, r)) if n.col != usize::MAX => {
                format!("{} {}", n.name, frame.column_at(n.col).value(r))
            }
            _ => n.name.clone(),
        };
        let lit = |l: &Literal| match l {
            Literal::Num(n) => fmt_num(*n),
            Literal::Text(t) => format!("'{t}'"),
        };
        match self {
            Cond::True => "true".into(),
            Cond::And(v) => v
                .iter()
                .map(|c| c.render_nested(row))
                .collect::<Vec<_>>()
                .join(" and "),
            Cond::Or(v) => v
                .iter()
                .map(|c| c.render_nested(row))
                .collect::<Vec<_>>()
                .join(" or "),
            Cond::Not(c) => format!("not {}", c.render_nested(row)),
            Cond::Cmp { name, op, value } => {
                format!("{} {} {}", name_text(name), op.symbol(), lit(value))
            }
            Cond::Between {
                name,
                low,
                high,
                negated,
            } => format!(
                "{} {}between {} and {}",
                name_text(name),
                if *negated { "not " } else { "" },
                fmt_num(*low),
                fmt_num(*high)
            ),
            Cond::In {
                name,
                values,
                negated,
            } => format!(
                "{} {}in ({})",
                name_text(name),
                if *negated { "not " } else { "" },
                values.iter().map(lit).collect::<Vec<_>>().join(", ")
            ),
            Cond::IsNull { name, negated } => {
                format!(
                    "{} is {}null",
                    name_text(name),
                    if *negated { "not " } else { "" }
                )
            }
            Cond::HasTag(t) => format!("has tag '{t}'"),
        }
    }

    fn render_nested(&self, row: Option<(&Frame, usize)>) -> String {
        match self {
            Cond::And(_) | Cond::Or(_) => format!("({})", self.render(row)),
            _ => self.render(row),
        }
    }

    /// For a conjunction of atoms: each metric's allowed interval, and whether any atom is not
    /// a numeric range (text, tags, nulls) and so constrains more than the intervals show.
    /// `None` when the condition has `or`/`not` and cannot be summarised this way.
    pub fn intervals(&self) -> Option<(Vec<(String, Interval)>, bool)> {
        let atoms: Vec<&Cond> = match self {
            Cond::And(v) => v.iter().collect(),
            other => vec![other],
        };
        let mut out: Vec<(String, Interval)> = Vec::new();
        let mut other = false;
        for atom in atoms {
            let (name, iv) = match atom {
                Cond::Cmp {
                    name,
                    op,
                    value: Literal::Num(v),
                } => {
                    let v = *v;
                    let iv = match op {
                        CmpOp::Ge => Interval {
                            low: Some((v, true)),
                            high: None,
                        },
                        CmpOp::Gt => Interval {
                            low: Some((v, false)),
                            high: None,
                        },
                        CmpOp::Le => Interval {
                            low: None,
                            high: Some((v, true)),
                        },
                        CmpOp::Lt => Interval {
                            low: None,
                            high: Some((v, false)),
                        },
                        CmpOp::Eq => Interval {
                            low: Some((v, true)),
                            high: Some((v, true)),
                        },
                        CmpOp::Ne => {
                            other = true;
                            continue;
                        }
                    };
                    (name.name.clone(), iv)
                }
                Cond::Between {
                    name,
                    low,
                    high,
                    negated: false,
                } => (
                    name.name.clone(),
                    Interval {
                        low: Some((*low, true)),
                        high: Some((*high, true)),
                    },
                ),
                Cond::True => continue,
                Cond::Or(_) | Cond::Not(_) => return None,
                _ => {
                    other = true;
                    continue;
                }
            };
            match out.iter_mut().find(|(n, _)| *n == name) {
                Some((_, existing)) => *existing = existing.intersect(iv),
                None => out.push((name, iv)),
            }
        }
        Some((out, other))
    }

    /// What this row lacks to satisfy the condition: the smallest set of failing numeric atoms
    /// (for `or`, the branch needing the fewest changes). `None` when it cannot be said in numbers.
    pub fn needs(&self, frame: &Frame, row: usize) -> Option<Vec<Need>> {
        if self.eval(frame, row) {
            return Some(Vec::new());
        }
        match self {
            Cond::And(v) => {
                let mut all = Vec::new();
                for c in v {
                    all.extend(c.needs(frame, row)?);
                }
                Some(all)
            }
            Cond::Or(v) => v
                .iter()
                .filter_map(|c| c.needs(frame, row))
                .min_by_key(|needs| needs.len()),
            Cond::Cmp {
                name,
                op,
                value: Literal::Num(target),
            } if *op != CmpOp::Ne && *op != CmpOp::Eq => {
                let has = frame.column_at(name.col).num(row);
                Some(vec![Need {
                    name: name.name.clone(),
                    has,
                    op: *op,
                    target: *target,
                    delta: has.map(|h| target - h),
                }])
            }
            Cond::Between {
                name,
                low,
                high,
                negated: false,
            } => {
                let has = frame.column_at(name.col).num(row);
                let (op, target) = match has {
                    Some(h) if h > *high => (CmpOp::Le, *high),
                    _ => (CmpOp::Ge, *low),
                };
                Some(vec![Need {
                    name: name.name.clone(),
                    has,
                    op,
                    target,
                    delta: has.map(|h| target - h),
                }])
            }
            _ => None,
        }
    }
}

fn compare(cell: Value<'_>, lit: &Literal) -> Option<std::cmp::Ordering> {
    match (cell, lit) {
        (Value::Num(a), Literal::Num(b)) => a.partial_cmp(b),
        (Value::Text(a), Literal::Text(b)) => Some(a.cmp(b.as_str())),
        _ => None,
    }
}

/// Identifiers in a SQL expression that are not function names: the metrics a derived metric
/// reads. Keywords are skipped unless they are known names.
pub fn sql_identifiers(sql: &str, known: &dyn Fn(&str) -> bool) -> Result<Vec<String>, String> {
    check_size(sql)?;
    use sqlparser::keywords::Keyword;
    use sqlparser::tokenizer::{Token, Tokenizer};
    let dialect = GenericDialect {};
    let tokens = Tokenizer::new(&dialect, sql)
        .tokenize()
        .map_err(|e| format!("cannot read expression: {e}"))?;
    let significant: Vec<&Token> = tokens
        .iter()
        .filter(|t| !matches!(t, Token::Whitespace(_)))
        .collect();
    let mut out = Vec::new();
    for (i, tok) in significant.iter().enumerate() {
        if let Token::Word(w) = tok {
            let next_is_paren = matches!(significant.get(i + 1), Some(Token::LParen));
            let after_dot = i > 0 && matches!(significant[i - 1], Token::Period);
            if next_is_paren || after_dot {
                continue;
            }
            if w.quote_style.is_some() || known(&w.value) || w.keyword == Keyword::NoKeyword {
                out.push(w.value.clone());
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::Column;

    #[test]
    fn huge_or_deep_expressions_are_refused_without_recursing() {
        let long = format!("sum(amount){}", " + sum(amount)".repeat(1_000));
        assert!(
            check_size(&long).unwrap_err().contains("bytes long"),
            "{long:.20}"
        );
        let many = format!("a{}", "+a".repeat(300));
        assert_eq!(
            check_size(&many).unwrap_err(),
            "the expression has 300 operators; at most 256 are allowed (split it into metrics that build on each other)"
        );
        let or = format!("x = 1{}", " OR x = 1".repeat(30_000));
        assert!(parse_condition(&or).is_err());
        let deep = format!("{}1{}", "(".repeat(40), ")".repeat(40));
        assert!(check_size(&deep).unwrap_err().contains("40 deep"));
        let fine = format!("a{}", "+a".repeat(100));
        assert!(check_size(&fine).is_ok());
    }

    fn frame() -> Frame {
        let mut f = Frame::new(vec!["a", "b"], vec![vec!["family_card".into()], vec![]]);
        f.push(
            "assets",
            Column::Num(vec![Some(1_200_000.0), Some(265_000.0)]),
        )
        .unwrap();
        f.push("family", Column::Num(vec![Some(10.0), None]))
            .unwrap();
        f.push("nature", Column::Text(vec![Some("private".into()), None]))
            .unwrap();
        f
    }

    #[test]
    fn parses_and_evaluates_with_explanations() {
        let f = frame();
        let mut c =
            parse_condition("assets >= 1000000 OR (family >= 800000 AND has_tag('family_card'))")
                .unwrap();
        c.resolve(&f).unwrap();
        assert!(c.eval(&f, 0));
        assert!(!c.eval(&f, 1));
        assert_eq!(
            c.reasons(&f, 0),
            vec!["assets 1,200,000 >= 1,000,000".to_string()]
        );
        let needs = c.needs(&f, 1).unwrap();
        assert_eq!(needs.len(), 1);
        assert_eq!(needs[0].name, "assets");
        assert_eq!(needs[0].delta, Some(735_000.0));
    }

    #[test]
    fn nulls_fail_comparisons_and_in_lists() {
        let f = frame();
        let mut c = parse_condition("nature IN ('private', 'state')").unwrap();
        c.resolve(&f).unwrap();
        assert!(c.eval(&f, 0));
        assert!(!c.eval(&f, 1));
        let mut n = parse_condition("family IS NULL").unwrap();
        n.resolve(&f).unwrap();
        assert!(!n.eval(&f, 0));
        assert!(n.eval(&f, 1));
    }

    #[test]
    fn type_mismatch_and_unknown_names_are_errors() {
        let f = frame();
        let mut c = parse_condition("nature > 5").unwrap();
        assert!(c.resolve(&f).unwrap_err().contains("is text"));
        let mut c = parse_condition("asets > 5").unwrap();
        assert!(
            c.resolve(&f)
                .unwrap_err()
                .contains("unknown metric or score `asets`")
        );
        assert!(
            parse_condition("assets + 1 > 5")
                .unwrap_err()
                .contains("compare")
        );
        assert!(
            parse_condition("assets")
                .unwrap_err()
                .contains("alone is not a condition")
        );
    }

    #[test]
    fn intervals_of_conjunctions() {
        let c =
            parse_condition("volume >= 200000 AND volume <= 300000 AND payment = 'good'").unwrap();
        let (ivs, other) = c.intervals().unwrap();
        assert!(other);
        assert_eq!(ivs[0].1.describe(), "[200,000, 300,000]");
        let c = parse_condition("x > 5 AND x < 3").unwrap();
        assert!(c.intervals().unwrap().0[0].1.is_empty());
        assert!(
            parse_condition("x > 1 OR y > 1")
                .unwrap()
                .intervals()
                .is_none()
        );
    }

    #[test]
    fn identifiers_of_expressions() {
        let known = |n: &str| n == "revenue" || n == "prev";
        let ids = sql_identifiers("revenue / nullif(prev, 0) - 1", &known).unwrap();
        assert_eq!(ids, vec!["revenue", "prev"]);
        let ids = sql_identifiers("CASE WHEN revenue > 0 THEN 1 ELSE 0 END", &known).unwrap();
        assert_eq!(ids, vec!["revenue"]);
    }
}
