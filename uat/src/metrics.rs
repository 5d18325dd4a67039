//! Reading the Prometheus text exposition (format 0.0.4) as the `metric` step needs it: samples
//! with their labels and values, and the choice of the one series a step names.

/// Label pairs in the order the exposition writes them.
pub type Labels = Vec<(String, String)>;

/// One sample line: `name{label="value",...} value [timestamp]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: Labels,
    pub value: f64,
}

impl Sample {
    /// `name{a="b"}` as the exposition writes it.
    pub fn series(&self) -> String {
        series(&self.name, &self.labels)
    }
}

fn series(name: &str, labels: &[(String, String)]) -> String {
    if labels.is_empty() {
        return name.to_owned();
    }
    let l: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
    format!("{name}{{{}}}", l.join(","))
}

/// Every sample of an exposition; comments and blank lines are skipped, a malformed line is an
/// error naming its line number.
pub fn parse(text: &str) -> Result<Vec<Sample>, String> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        out.push(parse_line(line).map_err(|m| format!("line {}: {m}: `{line}`", n + 1))?);
    }
    Ok(out)
}

fn parse_line(line: &str) -> Result<Sample, String> {
    let name_end = line
        .find(|c: char| c == '{' || c.is_whitespace())
        .ok_or("no value")?;
    let name = &line[..name_end];
    if name.is_empty() {
        return Err("no metric name".into());
    }
    let mut rest = &line[name_end..];
    let mut labels = Vec::new();
    if let Some(inner) = rest.strip_prefix('{') {
        let (parsed, after) = parse_labels(inner)?;
        labels = parsed;
        rest = after;
    }
    let value = rest.split_whitespace().next().ok_or("no value")?;
    let value = value
        .parse::<f64>()
        .map_err(|_| format!("value `{value}` is not a number"))?;
    Ok(Sample {
        name: name.to_owned(),
        labels,
        value,
    })
}

/// Parses `a="x",b="y"}` (after the opening brace); returns the labels and the text after `}`.
fn parse_labels(mut s: &str) -> Result<(Labels, &str), String> {
    let mut labels = Vec::new();
    loop {
        s = s.trim_start().trim_start_matches(',').trim_start();
        if let Some(after) = s.strip_prefix('}') {
            return Ok((labels, after));
        }
        let eq = s.find('=').ok_or("a label without `=`")?;
        let key = s[..eq].trim().to_owned();
        s = s[eq + 1..].trim_start();
        let mut chars = s.char_indices();
        if chars.next().map(|(_, c)| c) != Some('"') {
            return Err(format!("the value of label `{key}` is not quoted"));
        }
        let mut value = String::new();
        let mut end = None;
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => match chars.next().map(|(_, c)| c) {
                    Some('n') => value.push('\n'),
                    Some(other) => value.push(other),
                    None => break,
                },
                '"' => {
                    end = Some(i + 1);
                    break;
                }
                c => value.push(c),
            }
        }
        let end = end.ok_or_else(|| format!("the value of label `{key}` is not closed"))?;
        labels.push((key, value));
        s = &s[end..];
    }
}

/// The value of the one series named `name` whose labels include `want`. The error says what is
/// there instead: the names present, the series of that name, or the several that match.
pub fn select(samples: &[Sample], name: &str, want: &[(String, String)]) -> Result<f64, String> {
    let named: Vec<&Sample> = samples.iter().filter(|s| s.name == name).collect();
    if named.is_empty() {
        let mut names: Vec<&str> = samples.iter().map(|s| s.name.as_str()).collect();
        names.dedup();
        return Err(format!(
            "no series named `{name}`; the exposition has {} samples of: {}",
            samples.len(),
            clip_list(&names)
        ));
    }
    let matching: Vec<&Sample> = named
        .iter()
        .copied()
        .filter(|s| want.iter().all(|w| s.labels.contains(w)))
        .collect();
    let shown = |v: &[&Sample]| clip_list(&v.iter().map(|s| s.series()).collect::<Vec<_>>());
    match matching.as_slice() {
        [one] => Ok(one.value),
        [] => Err(format!(
            "no series `{}`; present: {}",
            series(name, want),
            shown(&named)
        )),
        many => Err(format!(
            "{} series match `{}`; give `labels` to pick one: {}",
            many.len(),
            series(name, want),
            shown(many)
        )),
    }
}

/// At most 12 entries, then a count.
fn clip_list<T: AsRef<str>>(items: &[T]) -> String {
    const SHOWN: usize = 12;
    let mut s = items
        .iter()
        .take(SHOWN)
        .map(AsRef::as_ref)
        .collect::<Vec<_>>()
        .join(", ");
    if items.len() > SHOWN {
        s.push_str(&format!(", ... ({} in all)", items.len()));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "# HELP adapter_backlog_documents Documents not yet delivered.\n\
        # TYPE adapter_backlog_documents gauge\n\
        adapter_backlog_documents 3\n\
        adapter_receipts_total{outcome=\"printed\"} 5\n\
        adapter_receipts_total{outcome=\"buffered\"} 1\n\
        x_bucket{route=\"/v1/a\",status_class=\"2xx\",le=\"+Inf\"} 7 1700000000000\n\
        odd{v=\"a \\\"q\\\" \\\\ b\\nc\", w = \"}\"} -Inf\n";

    fn l(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn parses_names_labels_escapes_values_and_timestamps() {
        let s = parse(TEXT).unwrap();
        assert_eq!(s.len(), 5);
        assert_eq!(s[0].value, 3.0);
        assert_eq!(s[3].labels[2], ("le".to_owned(), "+Inf".to_owned()));
        assert_eq!(s[3].value, 7.0);
        assert_eq!(s[4].labels, l(&[("v", "a \"q\" \\ b\nc"), ("w", "}")]));
        assert_eq!(s[4].value, f64::NEG_INFINITY);
        assert!(parse("x{a=b} 1").unwrap_err().contains("line 1"));
        assert!(parse("ok 1\nx one").unwrap_err().starts_with("line 2:"));
    }

    #[test]
    fn selects_exactly_one_series_and_says_what_is_there_otherwise() {
        let s = parse(TEXT).unwrap();
        assert_eq!(select(&s, "adapter_backlog_documents", &[]), Ok(3.0));
        assert_eq!(
            select(&s, "adapter_receipts_total", &l(&[("outcome", "buffered")])),
            Ok(1.0)
        );
        let many = select(&s, "adapter_receipts_total", &[]).unwrap_err();
        assert!(many.starts_with("2 series match"), "{many}");
        let none = select(&s, "adapter_receipts_total", &l(&[("outcome", "x")])).unwrap_err();
        assert!(
            none.contains("present: adapter_receipts_total{outcome=\"printed\"}"),
            "{none}"
        );
        let absent = select(&s, "adapter_backlog", &[]).unwrap_err();
        assert!(absent.contains("adapter_backlog_documents, adapter_receipts_total, x_bucket"));
    }
}
