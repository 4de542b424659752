pub mod cmd;
pub mod frames;
pub mod lab;
