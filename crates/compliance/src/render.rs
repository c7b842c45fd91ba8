//! Rendering a report as Markdown or as a self-contained HTML page.
//!
//! Every string taken from the report (user names, problems, times, even ids
//! and titles, since a `Report` can be deserialised from anywhere) is escaped
//! for the output format. Statuses and the page's own markup are the only
//! text written as is.

use std::fmt::Write as _;

use crate::report::{Report, Status};

/// Escapes text for HTML element content and quoted attribute values.
pub fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// Escapes text for inline Markdown (CommonMark and GitHub tables): the
/// characters that start markup, raw HTML, entities or table cells are
/// backslash-escaped, and line breaks become spaces so a value cannot open
/// a block of its own.
pub fn escape_markdown(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '|' | '&' | '#' | '~' | '!' => {
                out.push('\\');
                out.push(c);
            }
            '\r' | '\n' => out.push(' '),
            _ => out.push(c),
        }
    }
    out
}

fn status_label(s: Status) -> &'static str {
    match s {
        Status::Pass => "PASS",
        Status::Fail => "FAIL",
        Status::NotApplicable => "NOT APPLICABLE",
    }
}

fn evidence_json(report: &Report) -> String {
    serde_json::to_string_pretty(&report.evidence)
        .unwrap_or_else(|e| format!("(evidence could not be serialised: {e})"))
}

/// Renders a report as a Markdown document: title, time, summary tables,
/// one section per control (status, rationale, evidence) and the evidence
/// as collected.
pub fn render_markdown(report: &Report) -> String {
    let mut md = String::new();
    let e = escape_markdown;
    // Writing to a String cannot fail.
    let _ = writeln!(md, "# Compliance report: {}\n", e(&report.framework_title));
    let _ = writeln!(md, "- Framework: {}", e(&report.framework));
    let _ = writeln!(md, "- Generated: {}", e(&report.generated_at));
    let _ = writeln!(md, "- Overall: **{}**\n", status_label(report.overall));

    md.push_str("## Summary\n\n| Status | Controls |\n|---|---|\n");
    let _ = writeln!(md, "| pass | {} |", report.summary.pass);
    let _ = writeln!(md, "| fail | {} |", report.summary.fail);
    let _ = writeln!(
        md,
        "| not applicable | {} |\n",
        report.summary.not_applicable
    );

    md.push_str("| Control | Title | Status |\n|---|---|---|\n");
    for c in &report.controls {
        let _ = writeln!(
            md,
            "| {} | {} | {} |",
            e(&c.id),
            e(&c.title),
            status_label(c.status)
        );
    }

    for c in &report.controls {
        let _ = writeln!(md, "\n## {}: {}\n", e(&c.id), e(&c.title));
        let _ = writeln!(md, "**Status:** {}\n", status_label(c.status));
        let _ = writeln!(md, "{}\n", e(&c.rationale));
        md.push_str("Evidence:\n\n");
        if c.evidence.is_empty() {
            md.push_str("- (none)\n");
        }
        for line in &c.evidence {
            let _ = writeln!(md, "- {}", e(line));
        }
    }

    // A fence longer than any run of backticks in the JSON cannot be closed
    // from inside it.
    let json = evidence_json(report);
    let longest = json.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    let fence = "`".repeat(longest.max(2) + 1);
    let _ = writeln!(
        md,
        "\n## Evidence as collected\n\n{fence}json\n{json}\n{fence}"
    );
    md
}

const STYLE: &str = "\
body{font-family:system-ui,sans-serif;margin:0;background:#f6f7f9;color:#1d2330}
main{max-width:60rem;margin:0 auto;padding:1.5rem}
h1{margin-bottom:.25rem}
table{border-collapse:collapse;margin:1rem 0}
th,td{border:1px solid #c9ced6;padding:.35rem .7rem;text-align:left}
th{background:#e9ecf1}
section{background:#fff;border:1px solid #c9ced6;border-left-width:.4rem;border-radius:.3rem;margin:1rem 0;padding:.5rem 1rem}
section.pass{border-left-color:#1f883d}
section.fail{border-left-color:#cf222e}
section.not_applicable{border-left-color:#8c959f}
.status{display:inline-block;font-weight:bold;padding:.1rem .5rem;border-radius:.2rem;color:#fff}
.status.pass{background:#1f883d}
.status.fail{background:#cf222e}
.status.not_applicable{background:#8c959f}
pre{background:#fff;border:1px solid #c9ced6;padding:.75rem;overflow-x:auto}
";

fn badge(s: Status) -> String {
    format!(
        "<span class=\"status {}\">{}</span>",
        s.as_str(),
        status_label(s)
    )
}

/// Renders a report as one self-contained HTML5 page (inline style, no
/// script, a content security policy that loads nothing).
pub fn render_html(report: &Report) -> String {
    let h = escape_html;
    let mut out = String::new();
    out.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    out.push_str("<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">\n");
    out.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    let _ = writeln!(
        out,
        "<title>Compliance report: {}</title>",
        h(&report.framework_title)
    );
    let _ = writeln!(out, "<style>\n{STYLE}</style>\n</head>\n<body>\n<main>");
    let _ = writeln!(
        out,
        "<h1>Compliance report: {}</h1>",
        h(&report.framework_title)
    );
    let _ = writeln!(
        out,
        "<p>Framework: <code>{}</code> &middot; Generated: <time>{}</time> &middot; Overall: {}</p>",
        h(&report.framework),
        h(&report.generated_at),
        badge(report.overall)
    );

    out.push_str("<h2>Summary</h2>\n<table>\n<tr><th>Status</th><th>Controls</th></tr>\n");
    let _ = writeln!(
        out,
        "<tr><td>pass</td><td>{}</td></tr>",
        report.summary.pass
    );
    let _ = writeln!(
        out,
        "<tr><td>fail</td><td>{}</td></tr>",
        report.summary.fail
    );
    let _ = writeln!(
        out,
        "<tr><td>not applicable</td><td>{}</td></tr>\n</table>",
        report.summary.not_applicable
    );
    out.push_str("<table>\n<tr><th>Control</th><th>Title</th><th>Status</th></tr>\n");
    for c in &report.controls {
        let _ = writeln!(
            out,
            "<tr><td><a href=\"#control-{id}\">{id}</a></td><td>{}</td><td>{}</td></tr>",
            h(&c.title),
            badge(c.status),
            id = h(&c.id)
        );
    }
    out.push_str("</table>\n");

    for c in &report.controls {
        let _ = writeln!(
            out,
            "<section id=\"control-{id}\" class=\"{}\">\n<h2>{id}: {}</h2>\n<p>{}</p>\n<p>{}</p>\n<h3>Evidence</h3>\n<ul>",
            c.status.as_str(),
            h(&c.title),
            badge(c.status),
            h(&c.rationale),
            id = h(&c.id)
        );
        for line in &c.evidence {
            let _ = writeln!(out, "<li>{}</li>", h(line));
        }
        out.push_str("</ul>\n</section>\n");
    }

    let _ = writeln!(
        out,
        "<details>\n<summary>Evidence as collected (JSON)</summary>\n<pre>{}</pre>\n</details>",
        h(&evidence_json(report))
    );
    out.push_str("</main>\n</body>\n</html>\n");
    out
}
