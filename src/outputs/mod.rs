//! Outputs: digest and alert e-mail (more to come: TAXII 2.1, exports).

pub mod mail;
