export const metadata = {
  title: "Second (example)",
  description: "Example web app for the Second release pipeline",
};

export default function RootLayout({ children }) {
  return (
    <html lang="en">
      <body>{children}</body>
    </html>
  );
}
