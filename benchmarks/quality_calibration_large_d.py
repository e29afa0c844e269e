"""Part of quality_calibration_large.py's texts (its ``parse`` reads the block): pairs of
near paraphrases (adjacent lines), signs and notices, messages, reviews, instructions and
paragraphs."""

TEXTS = """
# pairs of near paraphrases, two wordings of one statement on adjacent lines
The meeting has been moved to Thursday.
We have rescheduled the meeting for Thursday.
She quit her job to travel around the world.
She gave up her job so she could see the world.
The baby finally fell asleep at midnight.
It was midnight before the baby went to sleep.
He always forgets people's birthdays.
Birthdays are something he never remembers.
The library lends e-books as well as paper ones.
You can borrow electronic books from the library too.
The lake is too cold for swimming in May.
In May the water of the lake is still too cold to swim in.
Our team lost the final on penalties.
We were beaten in the final in a penalty shoot-out.
The shop around the corner sells second-hand books.
There is a used bookshop just round the corner.
My phone fell into the toilet.
I dropped my mobile in the loo.
The price includes breakfast and dinner.
Breakfast and dinner are included in the price.
He has lived in this village all his life.
He was born here and has never lived anywhere else.
The car would not start this morning.
This morning the engine refused to start.
It took us four hours to climb the hill.
The climb to the top of the hill took four hours.
Children under five travel for free.
Kids younger than five do not need a ticket.
The film was so boring that I fell asleep.
I nodded off during the film because it was dull.
The soup tastes better the next day.
This soup is even nicer when reheated the following day.
We ran out of petrol on the motorway.
The car's tank went empty while we were on the motorway.
She paid off her student loan last year.
Last year she finished repaying her student debt.
The new road cuts the journey in half.
Thanks to the new road, the trip takes half as long.
Most of the guests left before midnight.
By midnight nearly everyone at the party had gone home.
The plant dies if you water it too much.
Overwatering will kill this plant.
He speaks so quietly that nobody can hear him.
His voice is so soft that no one hears what he says.
The exam was easier than I had expected.
The test turned out to be less difficult than I feared.
The factory will close at the end of the year.
By the end of the year the plant will shut down.
I have never been on a plane.
I have not flown even once in my life.
The show was sold out weeks in advance.
All the tickets for the show had gone weeks before.
The dog is scared of thunder.
Thunderstorms frighten our dog.
Eat more vegetables and less sugar.
Cut down on sugar and add more vegetables to your meals.
The bridge was built in only two years.
It took just two years to construct the bridge.
She forgot to switch off the oven.
She left the oven on by mistake.
The report has several spelling mistakes.
There are a number of typos in the report.
We need to leave by seven at the latest.
We must set off no later than seven.
He paints in the mornings when the light is best.
He does his painting early in the day, when the light is good.
The gym is busiest after work.
Most people go to the gym in the early evening.
The river froze for the first time in thirty years.
It was the first time in three decades that the river iced over.
The bus was full, so we had to wait for the next one.
There was no room on the bus and we waited for another.
This year the firm made twice as much profit.
The heater uses a lot of electricity.
This heater consumes plenty of power.
She is the fastest runner in her class.
Nobody in her class can run as fast as she does.
The path along the coast is closed after the landslide.
A landslide has shut the coastal footpath.
The book has been translated into forty languages.
There are translations of the book in forty languages.
The town hall clock is always five minutes slow.
The clock on the town hall runs five minutes behind.
I got a parking ticket outside the bank.
I was fined for parking in front of the bank.
The queue for the museum went round the block.
The line of people waiting for the museum stretched around the block.
He hurt his ankle playing basketball.
He twisted his ankle during a basketball game.
The shop is closed for a week while it is refurbished.
The store is shut for seven days for renovation.
We ate outside because the evening was so warm.
The evening was warm enough for us to have dinner in the garden.
The printer jams every time I use thick paper.
Heavy paper always gets stuck in the printer.
Their first child was born in the spring.
They had their first baby in springtime.
The kettle takes ages to boil.
It takes forever for the water in the kettle to boil.
The noise from the building site woke us at six.
Construction noise got us out of bed at six in the morning.
The festival was moved indoors because of the rain.
Because it was raining, the festival took place inside.
Our teacher never gives us homework on Fridays.
We never get homework from our teacher at the weekend.
The ferry was cancelled because of high waves.
Rough seas meant the ferry did not sail.
He repaired the hole in the roof without any help.
I usually walk to work when the weather is good.
On fine days I tend to go to work on foot.
The exhibition attracted a record number of visitors.
More people came to the exhibition than ever before.
She answered every question correctly.
She got all of the questions right.
The café gives free refills of coffee.
Coffee refills at the café cost nothing.
We lost our way in the forest.
We got lost in the woods.
The hotel is a short walk from the beach.
You can walk from the hotel to the beach in a few minutes.
The doctor told him to rest for a week.
He was advised by his doctor to take a week off.
The price of bread has gone up again.
Bread has become more expensive once more.
This app translates speech in real time.
The app can translate what you say as you speak.
The recipe calls for three eggs.
You need three eggs for this recipe.
He always arrives ten minutes early.
He is never late; he turns up ten minutes before time.
The children love feeding the ducks.
Feeding the ducks is the kids' favourite thing to do.
The restaurant is fully booked on Saturday.
There are no free tables at the restaurant this Saturday.
The village school has only twelve pupils.
Just twelve children go to the village school.
# signs, notices and labels
Keep off the grass.
No entry.
Staff only.
Emergency exit.
Fire exit, keep clear.
No smoking.
No dogs allowed.
Dogs must be kept on a lead.
Private property.
Wet paint.
Caution: slippery floor.
Beware of the dog.
Please queue here.
Please ring the bell.
Push.
Pull.
Open.
Closed.
Back in five minutes.
Closed for lunch.
For sale.
To let.
Free entry.
Toilets.
Lost property.
Information desk.
Baggage reclaim.
Arrivals.
Departures.
Way out.
Platform four.
Ticket office.
Waiting room.
Reserved.
Please do not touch.
No photography.
Silence, exam in progress.
Danger: high voltage.
Road works ahead.
Diversion.
Speed limit thirty.
Give way.
One way.
No U-turn.
Slow, children crossing.
Pedestrians only.
Bus lane.
Residents only.
Car park full.
Height restriction two metres.
Store in a cool, dry place.
Best before the end of March.
Keep refrigerated.
Shake well before use.
Not suitable for children under three.
Keep out of reach of children.
Contains nuts.
Suitable for vegetarians.
Made in Italy.
Hand wash only.
Do not tumble dry.
This way up.
Batteries not included.
Serves two.
Ready in ten minutes.
Press the button to cross.
Please take a number.
Please switch off your mobile phone.
Please leave the room as you found it.
Please keep your belongings with you at all times.
Unattended bags will be removed.
CCTV in operation.
Opening hours may vary on public holidays.
Chapter one
Introduction
Summary
Frequently asked questions
Terms and conditions
Privacy policy
Contact us
About the author
Further reading
Appendix B
Index
# messages and notes
Running ten minutes late, sorry!
Can you call me when you get this?
Don't forget the milk.
Dinner's in the oven.
I'll be home around six.
Meet you at the station.
Got the tickets!
Happy to help if you need anything.
Let me know when you arrive.
Call me back when you can.
The keys are under the mat.
Feed the cat while I'm away, please.
Back on Monday.
Out of office until the fourteenth.
I'm in a meeting, will call you later.
Running out of battery, speak tomorrow.
Just landed!
Parcel collected.
See the attached file.
Please find the invoice attached.
As discussed on the phone, here are the details.
Thanks for getting back to me so quickly.
Sorry for the late reply.
Could you confirm the date?
I look forward to hearing from you.
Please reply by Friday.
Apologies for any inconvenience.
Your order has been shipped.
Your appointment is confirmed for Tuesday at ten.
Your table is booked for eight people at half past seven.
Reminder: dentist tomorrow at nine.
The pool is closed for cleaning this week.
The lift will be serviced on Monday morning.
Water will be turned off between ten and twelve.
The car park will be resurfaced next week.
Bin collection is a day late because of the holiday.
Choir practice is cancelled tonight.
Lost: black cat with a white paw, answers to Pepper.
Found: a set of keys near the playground.
Room to rent, close to the university.
Babysitter wanted for two evenings a week.
Piano lessons for beginners.
# reviews and opinions
Great little hotel, friendly staff, would stay again.
The food was cold and the service was slow.
Best burger I've ever had.
Overpriced and underwhelming.
The room was clean but very small.
Fast delivery and well packed.
The charger stopped working after two weeks.
Five stars, highly recommended.
Not worth the money.
The instructions were impossible to follow.
Comfortable shoes, true to size.
The battery life is disappointing.
Lovely walk, but the path is muddy after rain.
Great value for money.
The ending of the film was a letdown.
The sequel is even funnier than the original.
The tour was too rushed to enjoy.
The staff went out of their way to help us.
I would not recommend this restaurant.
The coffee was excellent, the cake less so.
Easy to assemble and very sturdy.
The app is full of adverts.
Terrible customer service.
The best day of our holiday.
In my opinion, the book is better than the film.
I think the new design is much clearer.
Honestly, I preferred the old version.
To be fair, the price is reasonable.
I'm not a fan of spicy food.
Personally, I'd take the train.
# instructions
Insert the card with the chip facing up.
Press and hold the power button for five seconds.
Enter your PIN and press OK.
Fill in the form in capital letters.
Sign at the bottom of the page.
Remove the packaging before use.
Charge the battery fully before first use.
Turn the handle clockwise to open.
Attach the legs with the screws provided.
Water the seeds lightly every day.
Mix one part concentrate with ten parts water.
Apply a thin layer to clean skin.
Rinse thoroughly with warm water.
Allow the glue to dry for twenty-four hours.
Pour the mixture into a greased tin.
Follow the signs for the city centre.
Go straight on for about two hundred metres.
Turn right after the church.
Cross the bridge and keep to the left.
Press the red button in an emergency.
Lift the lid and add the washing powder.
Select the programme and press start.
Unplug the device before cleaning it.
Store the tablets in their original packaging.
Read the instructions carefully before you begin.
Answer all the questions on both pages.
Write your name at the top of each sheet.
Hand in your phones before the exam.
Leave the building by the nearest exit.
# paragraphs
The village sits at the end of a narrow valley, and for most of the year the only way in is a single road
  that follows the river; in winter, when the road is closed by snow, supplies arrive by helicopter.
My first job was in a small bakery, where I started at four in the morning, shaped loaves until nine and
  then served customers until the shop closed at one.
The study followed two thousand adults for ten years and found that those who walked to work were less
  likely to develop heart problems than those who drove.
When the power went out, the whole street came outside; someone lit a barbecue, children played in the dark,
  and for a few hours it felt like a summer festival.
The app stores your recipes, works out a shopping list for the week, and tells you which ingredients you
  already have at home.
Our train stopped in the middle of nowhere for almost an hour; the driver apologised twice, and in the end
  we were told that a tree had fallen across the line.
The bridge was designed to move slightly in strong winds, so engineers were not worried when it began to
  sway during the storm.
The new library has a café, a room for children's activities and quiet study desks on the top floor,
  and it stays open until ten on weekdays.
She spent three summers working on a fishing boat in the north, sleeping in a narrow bunk and getting up
  before dawn to haul in the nets.
The program reads the log files every night, counts the errors by type and sends a short report to the team
  before the working day begins.
After weeks of negotiations, the two companies agreed to share the cost of the new research centre, which
  will employ about three hundred people.
The garden had been neglected for years, but under the weeds we found old rose bushes, a stone bench and
  a small pond full of frogs.
The museum's collection began with a single sailor's chest of shells and maps, donated by his daughter
  more than a century ago.
If the temperature rises above thirty degrees, the sports day will be moved to the following week, and
  parents will be told by email.
The old cinema closed in the nineties, stood empty for twenty years and has just reopened as a community
  theatre run by volunteers.
Most of the town's water comes from a reservoir in the hills, which was built after a dry summer left
  the wells empty a hundred years ago.
He learned to cook from his grandmother, who never used a recipe and measured everything with her hands
  and a chipped teacup.
The survey asked a thousand drivers how they would feel about cars that drive themselves; most said they
  would not trust one with their children.
The festival began as a small market for local farmers and now fills the whole town for a week every
  September.
Because the museum is free on the first Sunday of the month, the queue starts forming long before the
  doors open at ten.
In the story, a young woman inherits a lighthouse from an uncle she never met, and slowly learns why he
  chose to live there alone.
The team spent months looking for the cause of the slowdown, and it turned out to be a single setting
  that had been changed during an upgrade.
Every spring the river floods the meadows below the town, leaving behind a layer of mud that makes the
  fields some of the most fertile in the region.
The hotel was built for the railway workers in the eighteen hundreds, and many of the original tiles and
  lamps are still in place.
During the heatwave the city opened its swimming pools until midnight and handed out free water at the
  main squares.
The patient was given a new drug in addition to her usual treatment, and after three months her symptoms
  had improved a great deal.
The kids spent the whole afternoon building a tree house, and by the evening it had a roof, a rope ladder
  and a sign saying no adults allowed.
The company promised to plant a tree for every product sold, but a journalist found that most of the
  trees were never planted.
The competition is open to anyone under twenty-five, and the winning short story will be published in
  the national newspaper.
At the top of the pass there is a small hut where walkers can shelter from the wind and sign a visitors'
  book that goes back fifty years.
The orchestra had no conductor for the first half of the concert, and the players followed the first
  violin instead.
The town's first traffic lights were installed in 1960, and people came from nearby villages just to
  watch them change.
We arrived at the campsite after dark, put up the tent by torchlight and only saw the next morning that
  we were right next to a lake.
The report recommends that schools start an hour later, since teenagers who sleep longer concentrate
  better and miss fewer classes.
The old railway line has been turned into a cycle path, running for thirty kilometres through woods and
  past abandoned stations.
When the bakery's oven broke on the busiest weekend of the year, the pizzeria next door lent them theirs
  for two nights.
The farmer rotates his crops every year, planting beans after wheat to put nitrogen back into the soil.
The software update changes the way files are saved, so documents made with the new version cannot be
  opened by the old one.
For the first week after the move the cat hid under the bed, and only came out at night to eat.
The charity collects old laptops, repairs them and gives them to students who cannot afford one.
Our grandparents kept every letter they ever wrote to each other, and last summer we read them all.
# mixed everyday sentences
The dentist's waiting room smelled of mint.
My watch is five minutes fast.
The calendar on the wall is still showing last month.
The lift only goes to the fourth floor.
Someone left a bag of apples on our doorstep.
The postman is late today.
The bin men come on Wednesdays.
The queue at the post office moved very slowly.
He always sits in the same seat on the bus.
She hums while she works.
The fire alarm test is every Monday at eleven.
The hall was decorated with balloons.
The candles on the cake would not stay lit.
The tablecloth has a red wine stain.
The photo album is full of old holiday pictures.
The clock stopped at a quarter past three.
A bird has built a nest in our chimney.
The ice cream van plays the same tune every day.
There is a crack in the ceiling.
Nobody answered the door.
The light turned green.
The phone rang twice and stopped.
He whistled on the way to work.
The floor was covered in toys.
The cake collapsed in the middle.
The envelope had no stamp.
The letter arrived two weeks late.
The old man fed the pigeons every morning.
A balloon drifted over the rooftops.
The church bells ring at noon.
The market stalls were packed up by two.
The kite got stuck in a tree.
The sandcastle was washed away by the tide.
The shop window was decorated for Easter.
The tap water tastes of chlorine.
The coffee has gone cold.
Her handwriting is impossible to read.
The spare tyre was flat too.
The photocopier jammed again.
Someone keeps stealing my yoghurt from the office fridge.
""".strip()
