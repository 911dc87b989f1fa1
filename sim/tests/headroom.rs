//! The 2i2c example through the shipped scenario: 60 users per 3 minutes and a 10-minute
//! lead time give μ = 200 expected arrivals and H = 200 + z·√200.

#![allow(clippy::unwrap_used)] // tests may unwrap

mod common;

use hubpack_core::headroom::{ArrivalForecast, HeadroomConfig, headroom_seats};
use hubpack_sim::models::arrivals::scheduled_events;

#[test]
fn the_2i2c_event_needs_200_seats_plus_a_margin() {
    let sc = common::shipped("2i2c-event.yaml");
    let forecast = ArrivalForecast {
        events: scheduled_events(&sc),
        ..Default::default()
    };
    let ten_min = 10 * 60_000;
    // Five minutes into the event (10:05), empty cluster.
    let now = (10 * 60 + 5) * 60_000;
    let mu = forecast.expected_arrivals(now, ten_min);
    assert!((mu - 200.0).abs() < 1e-6, "μ = {mu}");
    let h = headroom_seats(mu, &HeadroomConfig::default());
    assert!((h - (200.0 + 1.64 * 200f64.sqrt())).abs() < 1e-6, "H = {h}");
}
