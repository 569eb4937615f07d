pub fn main(_args: Vec<String>) -> i32 {
    eprintln!("olreg-testreg serve: not written yet");
    2
}
