//! Analysts' pins: merges and splits that override linking.

use super::*;

impl Engine {
    /// Replaces the pins and re-correlates. Merge pins are resolved against the ids recorded
    /// now; split pins hold by report, also for reports that arrive later.
    pub fn set_pins(&mut self, pins: Vec<Pin>) -> Vec<CampaignEvent> {
        self.pins = pins;
        self.resolve_pins();
        self.correlate_all()
    }

    /// Adds one pin and re-correlates.
    pub fn pin(&mut self, pin: Pin) -> Vec<CampaignEvent> {
        let mut pins = self.pins.clone();
        pins.push(pin);
        self.set_pins(pins)
    }

    pub(super) fn resolve_pins(&mut self) {
        self.split_label.clear();
        self.pin_pairs.clear();
        for (i, pin) in self.pins.iter().enumerate() {
            match pin {
                Pin::Split { reports, .. } => {
                    for &s in reports {
                        self.split_label.insert(s, i as u32 + 1);
                    }
                }
                Pin::Merge(a, b) => {
                    let mut anchors = self.ids.reports_of(*a);
                    anchors.extend(self.ids.reports_of(*b));
                    if let Some((&first, rest)) = anchors.split_first() {
                        for &s in rest {
                            self.pin_pairs.push((first, s));
                        }
                    }
                }
            }
        }
        for rep in &mut self.reps {
            rep.label = self.split_label.get(&rep.seq).copied().unwrap_or(0);
        }
    }
}
