pub fn main(_args: Vec<String>) -> i32 {
    eprintln!("olreg-testreg distribution: not written yet");
    2
}
