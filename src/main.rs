fn main() {
    println!("knockplay");
}
