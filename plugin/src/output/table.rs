//! kubectl's table layout: upper-case headers, columns padded to the widest cell plus three
//! spaces, `<none>` for empty cells.

pub struct Table {
    headers: Vec<&'static str>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(headers: Vec<&'static str>) -> Self {
        Self { headers, rows: Vec::new() }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells.into_iter().map(|c| if c.is_empty() { "<none>".to_string() } else { c }).collect());
    }

    /// Column widths over the headers and the rows so far.
    pub fn widths(&self) -> Vec<usize> {
        self.headers
            .iter()
            .enumerate()
            .map(|(i, h)| self.rows.iter().filter_map(|r| r.get(i)).map(|c| c.chars().count()).chain([h.len()]).max().unwrap_or(0))
            .collect()
    }

    pub fn render(&self) -> String {
        let widths = self.widths();
        let mut out = line(self.headers.iter().map(|h| h.to_string()).collect::<Vec<_>>().as_slice(), &widths);
        for r in &self.rows {
            out.push_str(&line(r, &widths));
        }
        out
    }

    /// Only the rows, laid out with `widths` (for `-w`, where the header was printed once).
    pub fn render_rows(&self, widths: &[usize]) -> String {
        self.rows.iter().map(|r| line(r, widths)).collect()
    }

    pub fn render_header(&self, widths: &[usize]) -> String {
        line(self.headers.iter().map(|h| h.to_string()).collect::<Vec<_>>().as_slice(), widths)
    }
}

fn line(cells: &[String], widths: &[usize]) -> String {
    let last = cells.len().saturating_sub(1);
    let mut s = String::new();
    for (i, c) in cells.iter().enumerate() {
        s.push_str(c);
        if i < last {
            let w = widths.get(i).copied().unwrap_or(0);
            s.push_str(&" ".repeat(w.saturating_sub(c.chars().count()) + 3));
        }
    }
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_line_up_and_empty_cells_say_none() {
        let mut t = Table::new(vec!["NAME", "PHASE"]);
        t.row(vec!["oms-oom".into(), "Resolved".into()]);
        t.row(vec!["a".into(), String::new()]);
        assert_eq!(t.render(), "NAME      PHASE\noms-oom   Resolved\na         <none>\n");
    }
}
