pub mod jute;
