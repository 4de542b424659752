pub mod cmd;
pub mod lab;
