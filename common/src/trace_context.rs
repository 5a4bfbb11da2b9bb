//! W3C trace context (`traceparent`), carried from an HTTP request into the messages it causes,
//! so one trace id follows an order from POST /orders through both services.

use rand::Rng;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceParent {
    pub trace_id: String,
    pub span_id: String,
    pub flags: String,
}

impl TraceParent {
    /// Parses `00-<32 hex>-<16 hex>-<2 hex>`; anything else is ignored (a new trace starts).
    pub fn parse(header: &str) -> Option<Self> {
        let parts: Vec<&str> = header.trim().split('-').collect();
        let [version, trace_id, span_id, flags] = parts.as_slice() else { return None };
        let hex = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_hexdigit());
        if !hex(version, 2) || *version == "ff" || !hex(trace_id, 32) || !hex(span_id, 16) || !hex(flags, 2) {
            return None;
        }
        if trace_id.bytes().all(|b| b == b'0') || span_id.bytes().all(|b| b == b'0') {
            return None;
        }
        Some(Self { trace_id: trace_id.to_lowercase(), span_id: span_id.to_lowercase(), flags: flags.to_string() })
    }

    pub fn new_root() -> Self {
        let mut rng = rand::rng();
        Self {
            trace_id: format!("{:032x}", rng.random::<u128>() | 1),
            span_id: format!("{:016x}", rng.random::<u64>() | 1),
            flags: "01".into(),
        }
    }

    /// Same trace, new span: what a hop (a message, a handler) records as its own position.
    pub fn child(&self) -> Self {
        Self { trace_id: self.trace_id.clone(), span_id: format!("{:016x}", rand::rng().random::<u64>() | 1), flags: self.flags.clone() }
    }

    pub fn continue_or_start(header: Option<&str>) -> Self {
        header.and_then(Self::parse).map(|p| p.child()).unwrap_or_else(Self::new_root)
    }
}

impl std::fmt::Display for TraceParent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "00-{}-{}-{}", self.trace_id, self.span_id, self.flags)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_trace_id_across_hops() {
        let incoming = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let hop = TraceParent::continue_or_start(Some(incoming));
        assert_eq!(hop.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_ne!(hop.span_id, "00f067aa0ba902b7");
        assert_eq!(TraceParent::parse(&hop.to_string()), Some(hop));
    }

    #[test]
    fn invalid_headers_start_a_new_trace() {
        for bad in [
            "",
            "garbage",
            "00-0000000000000000000000000000000-00f067aa0ba902b7-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ] {
            assert!(TraceParent::parse(bad).is_none(), "{bad}");
        }
        assert_eq!(TraceParent::continue_or_start(Some("nope")).trace_id.len(), 32);
    }
}
