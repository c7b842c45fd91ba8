//! Which attachment mode is in force. The store records the mode the
//! sandboxes were made in, so that a configuration that names none (bridge
//! mode on a new host) keeps an existing host in the mode its sandboxes
//! are plumbed for, and a configuration that names another one is refused
//! before anything changes while a sandbox is attached.

use super::{Engine, EngineError};
use palisade_core::config::Mode;

impl Engine {
    /// Settles `config.network.mode` against the store's record (one
    /// query while they agree):
    /// - recorded, and the configuration names none or the same one: the
    ///   recorded mode;
    /// - recorded, and the configuration names another: refused while a
    ///   sandbox is attached; with none, leaving bridge mode deletes
    ///   palisade's bridges, and the new mode is recorded;
    /// - not recorded (a new host, or one a palisade that did not record
    ///   it set up): with sandboxes attached, the mode they were made in
    ///   (the configured one, else bridge if bridge mode's layout was
    ///   recorded, else routed, that palisade's default); otherwise the
    ///   configured or default mode. Recorded from then on.
    pub(super) fn settle_mode(&mut self) -> Result<(), EngineError> {
        let net = &self.config.network;
        let configured = net.mode_configured.then_some(net.mode);
        let recorded = self.store.network_mode()?;
        let mode = match (recorded, configured) {
            (Some(recorded), None) => {
                self.config.network.mode = recorded;
                return Ok(());
            }
            (Some(recorded), Some(configured)) if recorded == configured => return Ok(()),
            (Some(recorded), Some(configured)) => {
                let sandboxes = self.store.attached_sandboxes()?;
                if sandboxes > 0 {
                    return Err(EngineError::ModeMismatch {
                        configured,
                        recorded,
                        sandboxes,
                    });
                }
                if recorded == Mode::Bridge {
                    // Their gateway addresses and routes to the whole
                    // pools would take the routed sandboxes' traffic.
                    self.delete_bridges(|_| true, "on leaving bridge mode")?;
                }
                configured
            }
            (None, configured) => {
                if self.store.attached_sandboxes()? == 0 {
                    self.config.network.mode
                } else if let Some(configured) = configured {
                    configured
                } else if self.store.bridge_layout()?.is_some() {
                    Mode::Bridge
                } else {
                    Mode::Routed
                }
            }
        };
        self.config.network.mode = mode;
        self.store.set_network_mode(mode)?;
        Ok(())
    }
}
