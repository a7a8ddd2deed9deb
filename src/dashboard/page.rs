//! The dashboard page as the HTTP route serves it: the last reconcile's dashboard, rendered
//! when someone first asks for it and kept until the next reconcile publishes another. An
//! idle daemon nobody looks at renders nothing (at 10,000 services a render costs about as
//! much as the whole idle reconcile); a page viewed often is rendered once per reconcile.

use std::sync::{Arc, Mutex, PoisonError, RwLock};

use super::{DashboardData, render};

/// The page refreshes itself this often, in seconds.
pub const REFRESH_SECS: u32 = 60;

/// The dashboard to serve and its page once rendered.
#[derive(Debug, Default)]
pub struct Page {
    state: RwLock<Shown>,
    /// Held while a page renders: requests that arrive meanwhile wait for that page instead of
    /// rendering their own.
    rendering: Mutex<()>,
}

#[derive(Debug, Default)]
struct Shown {
    data: Option<Arc<DashboardData>>,
    html: Option<Arc<str>>,
}

impl Page {
    /// Serves `data` from now on (rendered at the first request).
    pub fn publish(&self, data: Arc<DashboardData>) {
        let mut shown = self.state.write().unwrap_or_else(PoisonError::into_inner);
        *shown = Shown {
            data: Some(data),
            html: None,
        };
    }

    /// The page of the dashboard published last; `None` before the first.
    pub fn html(&self) -> Option<Arc<str>> {
        // A writer that panicked left a whole state: the value is still usable.
        let cached = || {
            let shown = self.state.read().unwrap_or_else(PoisonError::into_inner);
            (shown.html.clone(), shown.data.clone())
        };
        if let (Some(html), _) = cached() {
            return Some(html);
        }
        let _rendering = self
            .rendering
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let data = match cached() {
            (Some(html), _) => return Some(html),
            (None, data) => data?,
        };
        let html: Arc<str> = render(&data, Some(REFRESH_SECS)).into();
        let mut shown = self.state.write().unwrap_or_else(PoisonError::into_inner);
        // Kept only if no newer dashboard was published while this one rendered.
        if shown.data.as_ref().is_some_and(|d| Arc::ptr_eq(d, &data)) {
            shown.html = Some(html.clone());
        }
        Some(html)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(at: &str) -> Arc<DashboardData> {
        Arc::new(DashboardData::empty(at))
    }

    #[test]
    fn renders_the_last_published_dashboard_once() {
        let page = Page::default();
        assert!(page.html().is_none());
        page.publish(data("2026-12-01T10:00:00Z"));
        let first = page.html().unwrap();
        assert!(first.contains("2026-12-01 10:00"), "{first}");
        assert!(Arc::ptr_eq(&first, &page.html().unwrap()), "rendered once");
        page.publish(data("2026-12-01T10:05:00Z"));
        let second = page.html().unwrap();
        assert!(second.contains("2026-12-01 10:05"), "{second}");
        assert!(!second.contains("2026-12-01 10:00"));
    }
}
